"""The layers of docs/architecture.md, enforced: each part of the package imports only the parts
below it, and no module imports another module's private name.

Read from the code itself (every ``import`` and ``from ... import``, at module level or inside a
function), so a new import that breaks the order fails here with the line to move.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "meterql"

#: Each part of meterql and the parts it may import (besides itself). Bottom first.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "exact_json": set(),
    "file_modes": set(),
    "wording": set(),
    "lazy": set(),  # names imported on first use  # counts and durations as meterql prints them
    "sql_text": {"errors"},
    "dialects": {"errors", "sql_text"},
    "encoders": {"wording", "dialects"},  # (for the SQL names of types)
    "catalog": {"wording", "errors", "sql_text", "dialects", "file_modes"},  # (durations)
    "connectors": {"errors", "sql_text", "dialects", "catalog"},
    "engine": {"lazy", "wording", "errors", "sql_text", "file_modes", "dialects", "catalog",
               "connectors"},
    "local": {"wording", "errors", "sql_text", "exact_json", "file_modes", "dialects", "catalog",
              "connectors", "engine"},
    "sync": {"lazy", "wording", "errors", "sql_text", "file_modes", "dialects", "catalog",
             "connectors", "engine"},
    "aggregates": {"wording", "errors", "sql_text", "dialects", "catalog", "engine"},
    "workspace": {"errors", "sql_text", "file_modes", "dialects", "catalog", "connectors",
                  "engine", "local", "sync", "aggregates", "access", "namespaces"},
    "access": {"errors", "catalog"},
    "server": {"wording", "errors", "sql_text", "exact_json", "file_modes", "encoders", "catalog",
               "engine", "local", "aggregates", "sync", "access", "workspace", "package"},
    # a workspace through its server (the server package only for server.presence)
    "client": {"errors", "exact_json", "catalog", "engine", "local", "sync", "aggregates",
               "server"},
    "repl": {"wording", "errors", "sql_text", "encoders", "catalog", "engine", "workspace",
             "package"},
    "cli": {"wording", "errors", "sql_text", "encoders", "catalog", "dialects", "engine", "local",
            "sync", "aggregates", "access", "workspace", "server", "client", "repl", "demo",
            "package"},
    "demo": {"errors", "workspace", "package"},
    "namespaces": {"errors", "catalog", "local", "sync", "workspace"},
    # meterql/__init__.py
    "package": {"lazy", "errors", "catalog", "engine", "workspace", "client"},
    "main": {"cli"},  # meterql/__main__.py
}


def _part(module: str) -> str:
    """``meterql.engine.bind`` -> ``engine``; ``meterql`` -> ``package``."""
    parts = module.split(".")
    if parts == ["meterql"]:
        return "package"
    name = parts[1]
    return {"__main__": "main"}.get(name, name)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    """(line, imported module, imported names) of every import in a file, made absolute."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [a.name for a in node.names]
            if base == "meterql":  # from meterql import exact_json: the module itself
                subs = [n for n in names
                        if (PACKAGE / n).is_dir() or (PACKAGE / f"{n}.py").exists()]
                for name in subs:
                    yield node.lineno, f"meterql.{name}", []
                names = [n for n in names if n not in subs]
                if not names:
                    continue
            yield node.lineno, base, names


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_imports_only_the_parts_below_it():
    problems = []
    for path in _sources():
        here = _part(_module_name(path))
        assert here in ALLOWED, f"{path}: part '{here}' is not in the layer table"
        for line, module, _ in _imports(path):
            if module != "meterql" and not module.startswith("meterql."):
                continue
            there = _part(module)
            if there != here and there not in ALLOWED[here]:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports "
                                f"{module} ({there})")
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_module_imports_another_modules_private_name():
    problems = []
    for path in _sources():
        for line, module, names in _imports(path):
            if not module.startswith("meterql"):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private or any(p.startswith("_") and not p.startswith("__")
                              for p in module.split(".")[1:]):
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: "
                                f"from {module} import {', '.join(names)}")
    assert not problems, "private names imported:\n" + "\n".join(problems)


def test_the_check_catches_a_wrong_import(tmp_path):
    """The layer check itself: the catalog importing the engine is caught."""
    fake = PACKAGE / "catalog" / "_layer_probe.py"
    fake.write_text("from meterql.engine import Engine\n")
    try:
        with pytest.raises(AssertionError,
                           match="catalog/_layer_probe.py:1: catalog imports meterql.engine"):
            test_every_part_imports_only_the_parts_below_it()
    finally:
        fake.unlink()
