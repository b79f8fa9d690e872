"""Habits of the command line: a CSV file given as a source, ``apikey list``'s header, the
hints' commands pasting into bash."""

from __future__ import annotations

import shlex
import subprocess

from click.testing import CliRunner

from meterql.cli import main


def test_a_csv_file_given_as_a_source_names_meterql_load(tmp_path):
    prices = tmp_path / "my prices.csv"
    prices.write_text("plan,price\nstarter,10.5\n")
    home = tmp_path / "home"
    runner = CliRunner()
    added = runner.invoke(main, ["--home", str(home), "source", "add", "fx", str(prices)])
    assert added.exit_code == 1
    assert "is a CSV file, which is loaded rather than registered as a source" in added.stderr
    # the hint's command, pasted as written, loads the file
    hinted = added.stderr.split("instead: ", 1)[1].split(", then", 1)[0]
    args = shlex.split(hinted.replace("NAME", "prices"))
    assert args[:2] == ["meterql", "load"] and args[2] == str(prices)
    loaded = runner.invoke(main, [*args[1:], "--home", str(home)])
    assert loaded.exit_code == 0 and "prices: 1 row" in loaded.output, loaded.output
    counted = runner.invoke(main, ["query", "SELECT count(*) AS n FROM local.uploads.prices",
                                   "-f", "csv", "--home", str(home)])
    assert counted.output.splitlines() == ["n", "1"]
    assert runner.invoke(main, ["source", "list", "--home", str(home)]).output.count("fx") == 0


def test_apikey_list_has_a_header_row_and_aligned_columns(tmp_path):
    home = tmp_path / "home"
    runner = CliRunner()
    empty = runner.invoke(main, ["apikey", "list", "--home", str(home)])
    assert empty.exit_code == 0
    assert empty.stdout.split() == ["id", "scope", "state", "name"]
    assert "meterql apikey create" in empty.stderr
    ids = []
    for scope, name in (("read", "billing engine"), ("admin", None)):
        made = runner.invoke(main, ["apikey", "create", "--scope", scope, "--home", str(home),
                                    *(["--name", name] if name else [])])
        ids.append(made.stdout.strip().split("_")[1])
    revoked = runner.invoke(main, ["apikey", "revoke", ids[1], "--home", str(home)])
    assert revoked.exit_code == 0
    lines = runner.invoke(main, ["apikey", "list", "--home", str(home)]).stdout.splitlines()
    assert lines[0].split() == ["id", "scope", "state", "name"]
    assert len(lines) == 3
    starts = [lines[0].index(word) for word in ("scope", "state", "name")]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert set(by_id) == set(ids)
    read, admin = by_id[ids[0]], by_id[ids[1]]
    assert read[starts[0]:].startswith("read") and read[starts[1]:].startswith("active")
    assert read[starts[2]:] == "billing engine"
    assert admin[starts[0]:].startswith("admin") and admin[starts[1]:].startswith("revoked 2")


def test_a_manual_table_hint_pastes_into_bash(tmp_path):
    runner = CliRunner()
    refused = runner.invoke(main, ["rows", "create", "credits", "--column", "amount:INTEGER",
                                   "--key", "customer_id", "--home", str(tmp_path / "h")])
    assert refused.exit_code == 1
    hinted = refused.stderr.split("(e.g. ", 1)[1].rsplit(")", 1)[0]
    assert subprocess.run(["bash", "-n"], input=f"meterql rows create credits {hinted}",
                          capture_output=True, text=True).returncode == 0
    made = runner.invoke(main, ["rows", "create", "credits", *shlex.split(hinted),
                                "--home", str(tmp_path / "h")])
    assert made.exit_code == 0, made.output
