"""The docs name every CLI command, option, setting and error, so none ships undocumented."""

from __future__ import annotations

from pathlib import Path

import click

from meterql import errors
from meterql.cli import main

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "meterql") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out += _commands(command, path)
        else:
            out.append((path, command))
    return out


def test_every_cli_command_and_option_is_in_the_guide():
    missing = []
    for path, command in _commands(main):
        if f"`{path}" not in GUIDE:
            missing.append(path)
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in GUIDE:
                    missing.append(f"{path} {opt}")
    assert not missing, f"undocumented: {missing}"


def test_every_error_class_is_in_the_guide():
    names = [n for n in errors.__all__ if n != "MeterqlError"]
    assert len(names) >= 15
    missing = [n for n in names if f"`{n}`" not in GUIDE]
    assert not missing, f"undocumented errors: {missing}"


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_line = next(
        line for line in ci.splitlines() if "pytest" in line and not line.startswith("#")
    )
    assert test_line.strip() in readme


def test_every_setting_is_in_the_guide():
    from meterql.catalog.settings import SETTINGS

    missing = [name for name in SETTINGS if f"`{name}`" not in GUIDE]
    assert not missing, f"undocumented settings: {missing}"


def test_every_http_limit_setting_is_in_the_http_api_page():
    from meterql.catalog.settings import SETTINGS

    page = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    missing = [name for name in SETTINGS if name.startswith("http_") and f"`{name}`" not in page]
    assert not missing and "InputLimitError" in page and "/v1/keys" in page, missing
