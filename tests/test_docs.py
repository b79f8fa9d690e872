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
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # (the root loads its commands on demand)
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out += _commands(command, path)
        else:
            out.append((path, command))
    return out


def test_every_cli_command_and_option_is_in_the_guide():
    missing = []
    commands = _commands(main)
    assert len(commands) >= 39 and ("meterql source list", ) in {(p,) for p, _ in commands}
    for path, command in [("meterql", main), *commands]:
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


def _bash_blocks() -> list[tuple[str, int, str]]:
    """(file, line, text) of every ```bash block of the README and docs/."""
    import re

    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            line = text[: match.start()].count("\n") + 1
            found.append((str(path.relative_to(ROOT)), line, match.group(1)))
    return found


def test_the_docs_commands_paste_into_bash_and_name_real_commands_and_options():
    """Each ```bash block is valid bash as written (``--column 'amount:DECIMAL(18,2)'``
    quoted), and each meterql command in it names a command and options that exist."""
    import re
    import shlex
    import subprocess

    blocks = _bash_blocks()
    assert len(blocks) >= 10
    problems, checked = [], 0
    for where, line, text in blocks:
        parsed = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        if parsed.returncode:
            problems.append(f"{where}:{line}: {parsed.stderr.strip()}")
            continue
        ends = "();<>|&\n"  # what ends a command (a newline outside quotes too)
        # (comments dropped first: shlex would drop the newline that ends them too)
        script = re.sub(r"(^|[ \t])#[^\n]*", "", text.replace("\\\n", " "), flags=re.M)
        lexer = shlex.shlex(script, posix=True, punctuation_chars=ends)
        lexer.whitespace, lexer.whitespace_split = " \t", True
        words = list(lexer)
        for start in [i for i, w in enumerate(words) if w.endswith("meterql")]:
            args = []
            for word in words[start + 1:]:
                if set(word) <= set(ends):
                    break
                args.append(word)
            problem = _unknown_in(args)
            checked += 1
            if problem:
                problems.append(f"{where}:{line}: meterql {' '.join(args)}: {problem}")
    assert not problems, "\n".join(problems)
    assert checked >= 40


def _unknown_in(args: list[str]) -> str | None:
    """What of ``meterql ARGS`` is not a command or an option of it, if anything."""
    command: click.Command = main
    options = {o for p in main.params for o in getattr(p, "opts", [])}
    words = list(args)
    while words and isinstance(command, click.Group):
        word = words.pop(0)
        if word.startswith("-"):
            if word.split("=")[0] not in options:
                return f"no option {word} before the command"
            if word.split("=")[0] in ("--home", "--server") and "=" not in word:
                words.pop(0)
            continue
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            return f"no command {word}"
        command = sub
    if isinstance(command, click.Group):
        return None  # a group alone (meterql, meterql source) prints its help
    options = {o for p in command.params for o in [*getattr(p, "opts", []),
                                                    *getattr(p, "secondary_opts", [])]}
    for word in words:
        if word.startswith("-") and word != "-" and word.split("=")[0] not in options:
            return f"no option {word}"
    return None


def test_the_commands_in_the_docs_text_are_valid_bash_too():
    """`meterql ...` in the prose (outside code blocks) pastes as well, as rendered (a line
    break inside a code span is a space)."""
    import re
    import subprocess

    spans = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        prose = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
        spans += [(path.name, m.group(1).replace("\n", " ")) for m in
                  re.finditer(r"(?<!`)`(meterql [^`]+)`(?!`)", prose)]
    assert len(spans) >= 100
    broken = [(name, span) for name, span in spans if subprocess.run(
        ["bash", "-n"], input=span, capture_output=True, text=True).returncode]
    assert not broken, broken
