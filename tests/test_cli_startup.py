"""The command line starts fast: commands are imported when used, ``meterql --help`` imports
none of the heavy libraries, and ``--home`` works before the command as after it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from meterql.cli import main
from meterql.cli.root import COMMANDS

HEAVY = ("duckdb", "pyarrow", "sqlglot", "fastapi", "httpx", "adbc_driver_postgresql", "numpy",
         "uvicorn", "prompt_toolkit", "lark")


def modules_after(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``meterql ARGS``."""
    script = ("import sys, json\n"
              "from meterql.cli import main\n"
              "try:\n"
              f"    main({list(args)!r})\n"
              "except SystemExit as exc:\n"
              "    assert not exc.code, exc.code\n"
              "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stderr.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(name for name in HEAVY if name in modules)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_command_loads_with_the_help_listed(name):
    ctx = click.Context(main)
    command = main.get_command(ctx, name)
    assert isinstance(command, click.Command) and command.name == name
    listed = click.Command(name, help=COMMANDS[name][2])
    for width in (45, 80, 500):  # the root's listing is this stub's at the terminal's width
        assert listed.get_short_help_str(width) == command.get_short_help_str(width)


def test_help_lists_every_command_and_imports_nothing_heavy(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "meterql", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines()
              if line.startswith("  ")]
    assert listed == sorted(COMMANDS)
    assert heavy_in(modules_after(tmp_path, "--help")) == []


def test_import_meterql_is_light_and_keeps_its_names(tmp_path):
    script = ("import sys, meterql\n"
              "before = [m for m in ('duckdb', 'pyarrow', 'sqlglot', 'httpx') "
              "if m in sys.modules]\n"
              "names = [meterql.Workspace.__name__, meterql.Client.__name__, "
              "meterql.Result.__name__, meterql.Table.__name__, meterql.__version__]\n"
              "print(before, names)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("[] ['Workspace', 'Client', 'Result', 'Table', '")
    import meterql

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        meterql.Nope  # noqa: B018


def test_home_before_the_command(tmp_path, monkeypatch):
    lite = tmp_path / "crm.db"
    import sqlite3

    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    before, elsewhere = tmp_path / "before", tmp_path / "elsewhere"
    monkeypatch.setenv("METERQL_HOME", str(elsewhere))
    runner = CliRunner()
    added = runner.invoke(main, ["--home", str(before), "source", "add", "crm",
                                 f"sqlite://{lite}"])
    assert added.exit_code == 0, added.output
    # before the command beats $METERQL_HOME ...
    listed = runner.invoke(main, ["--home", str(before), "source", "list"])
    assert listed.exit_code == 0 and "crm" in listed.output
    assert (before / "catalog.duckdb").exists() and not elsewhere.exists()
    # ... as after it does; after the command beats before it
    after = runner.invoke(main, ["source", "list", "--home", str(before)])
    assert "crm" in after.output
    both = runner.invoke(main, ["--home", str(before), "source", "list", "--home",
                                str(elsewhere)])
    assert both.exit_code == 0 and "crm" not in both.output
    # the status document and a server-less --home/--server clash see it too
    status = runner.invoke(main, ["--home", str(before), "status"])
    assert status.exit_code == 0 and json.loads(status.output)["home"] == str(before.resolve())
    clash = runner.invoke(main, ["--home", str(before), "--server", "http://127.0.0.1:9",
                                 "source", "list"])
    assert clash.exit_code == 2 and "--home and --server together" in clash.output


def test_home_before_no_command_opens_the_shell_on_that_folder(tmp_path):
    import os

    import pexpect

    script = str(Path(sys.executable).with_name("meterql"))
    env = {k: v for k, v in os.environ.items() if k not in ("METERQL_HOME", "METERQL_SERVER")}
    home = tmp_path / "chosen"
    child = pexpect.spawn(script, ["--home", str(home)], encoding="utf-8", timeout=60,
                          env=env, cwd=str(tmp_path))
    child.expect("meterql>")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert (home / "catalog.duckdb").exists() and not (tmp_path / "meterql_home").exists()


def test_home_and_server_before_a_bare_meterql_are_refused_together(tmp_path):
    import os

    import pexpect

    script = str(Path(sys.executable).with_name("meterql"))
    env = {k: v for k, v in os.environ.items() if k not in ("METERQL_HOME", "METERQL_SERVER")}
    child = pexpect.spawn(script, ["--home", str(tmp_path / "h"), "--server",
                                   "http://127.0.0.1:9"], encoding="utf-8", timeout=60,
                          env=env, cwd=str(tmp_path))
    child.expect("--home and --server together")
    child.expect(pexpect.EOF)


def test_source_list_opens_only_the_catalog(tmp_path):
    """``meterql source list`` reads the catalog (a DuckDB file): the engine, the local store
    and their pyarrow, numpy and sqlglot are not imported, on an empty workspace and on one
    with sources (a sync-mode source's replica is attached only when the engine opens)."""
    home = tmp_path / "home"
    assert heavy_in(modules_after(tmp_path, "--home", str(home), "source", "list")) == [
        "duckdb"]
    import sqlite3

    lite = tmp_path / "crm.db"
    with sqlite3.connect(lite) as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    runner = CliRunner()
    for name, mode in (("crm", "direct"), ("rep", "sync")):
        added = runner.invoke(main, ["--home", str(home), "source", "add", name,
                                     f"sqlite://{lite}", "--mode", mode])
        assert added.exit_code == 0, added.output
    script = ("import sys\n"
              "from meterql.cli import main\n"
              "try:\n"
              f"    main(['--home', {str(home)!r}, 'source', 'list'])\n"
              "except SystemExit as exc:\n"
              "    assert not exc.code, exc.code\n"
              "print(sorted(m for m in ('pyarrow', 'sqlglot', 'numpy') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    *listing, imported = proc.stdout.splitlines()
    assert imported == "[]", proc.stdout
    rows = [line.split("│")[1:4] for line in listing if "sqlite" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [["crm", "sqlite", "direct"],
                                                               ["rep", "sqlite", "sync"]]
    # the workspace still opens its engine when a command needs it: the sync source's
    # replica is attached and queryable
    queried = runner.invoke(main, ["--home", str(home), "query",
                                   "SELECT count(*) AS n FROM rep.__meterql__.sync_state"])
    assert queried.exit_code == 0, queried.output
