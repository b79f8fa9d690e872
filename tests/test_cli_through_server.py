"""Every command group run twice over the same data: in-process on one workspace, and through a
real ``meterql serve`` that owns an identical one (the commands find it and work through its
owner's socket). Output and exit status must be the same, line for line, once what differs by
nature is masked: timings, keys and ids made at random, the moment of a sync or a change.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from meterql.cli import main
from meterql.server.presence import read_presence
from tests.support.served import serve
from tests.support.waiting import wait_until

AGGREGATE = """-- name: spend
-- unit: credits
SELECT e.customer_id, sum(e.qty) AS quantity
FROM usage.main.events e
WHERE e.ts >= :period_start AND e.ts < :period_end
GROUP BY ALL
"""

DRAFT = AGGREGATE.replace("sum(e.qty)", "sum(e.qty) * 2")


def _data(root: Path) -> dict[str, Path]:
    root.mkdir()
    lite = root / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, "
                "credit DECIMAL(10,2))")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                    [(1, "Ann", "10.50"), (2, "O'Brien", None), (3, "Zoë", "0.01")])
    con.commit()
    con.close()
    dk = root / "usage.duckdb"
    con = duckdb.connect(str(dk))
    con.execute("CREATE TABLE events (id BIGINT PRIMARY KEY, customer_id BIGINT, "
                "ts TIMESTAMPTZ, qty DECIMAL(18,6))")
    con.execute("INSERT INTO events VALUES (1, 1, '2026-10-02 10:00+00', 1.5), "
                "(2, 1, '2026-10-03 10:00+00', 2.25), (3, 3, '2026-10-04 10:00+00', 0.000001),"
                " (4, 9, '2026-11-02 10:00+00', 4)")
    con.close()
    (root / "prices.csv").write_text("plan,price\ngrowth,1.50\nstarter,0.25\n")
    (root / "calls.ndjson").write_text(
        '{"id": "e1", "timestamp": "2026-10-01T00:00:00Z", "customer_id": "1", "n": 2}\n'
        '{"id": "e2", "timestamp": "2026-10-01T01:00:00Z", "customer_id": "3", "n": 1.5}\n'
        '{"id": "e1", "timestamp": "2026-10-01T00:00:00Z", "customer_id": "1", "n": 2}\n')
    (root / "fix.json").write_text(
        '{"id": "e2", "timestamp": "2026-10-01T01:00:00Z", "customer_id": "3", "n": 2.75}')
    (root / "aggregates").mkdir()
    (root / "aggregates" / "spend.sql").write_text(AGGREGATE)
    (root / "draft.sql").write_text(DRAFT)
    return {"lite": lite, "dk": dk, "root": root}


def _script(d: dict[str, Path]) -> list[list[str]]:
    """The commands, in order: every group, with refusals among them."""
    period = ["--from", "2026-10-01", "--to", "2026-11-01"]
    return [
        ["source", "add", "crm", f"sqlite://{d['lite']}"],
        ["source", "add", "usage", f"duckdb://{d['dk']}"],
        ["source", "add", "crm", f"sqlite://{d['lite']}"],  # exists
        ["source", "list"],
        ["source", "show", "crm"],
        ["source", "show", "crn"],  # did you mean
        ["source", "test", "crm"],
        ["source", "set", "crm", "--option", "statement_timeout_ms=5000"],
        ["source", "refresh", "crm"],
        ["tables"],
        ["tables", "crm"],
        ["describe", "customers"],
        ["describe", "custmers"],
        ["query", "SELECT id, name, credit FROM crm.main.customers ORDER BY id"],
        ["query", "SELECT id, name, credit FROM crm.main.customers ORDER BY id", "-f", "csv"],
        ["query", "SELECT c.name, sum(e.qty) AS qty FROM crm.main.customers c JOIN "
                  "usage.main.events e ON e.customer_id = c.id GROUP BY ALL ORDER BY 1",
         "-f", "json"],
        ["query", "SELECT * FROM crm.main.customers WHERE id = :id", "-p", "id=3", "-f",
         "jsonl"],
        ["query", "SELECT nme FROM crm.main.customers"],
        ["query", "DELETE FROM crm.main.customers"],
        ["query", "SELECT id FROM crm.main.customers ORDER BY id", "--max-rows", "2"],
        ["explain", "SELECT count(*) FROM usage.main.events WHERE customer_id = 1"],
        ["query", "SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t, 1 AS one", "--tz",
         "Europe/Berlin", "-f", "csv"],
        ["query", "SELECT 1", "--tz", "Europe/Berln"],
        ["query", "SET TimeZone = 'Asia/Tokyo'", "-f", "csv"],
        ["query", "EXPLAIN SELECT count(*) FROM usage.main.events WHERE customer_id = :c"],
        ["explain", "--analyze", "-p", "c=1",
         "SELECT count(*) AS n FROM usage.main.events WHERE customer_id = :c"],
        ["query", "SELECT customer_id, count(*) FROM usage.main.events"],
        ["settings", "set", "http_max_body_mb", "2"],
        ["settings", "reset", "http_max_body_mb"],
        ["settings", "set", "http_max_bdy_mb", "2"],
        ["settings", "list"],
        ["apikey", "create", "--scope", "read", "--name", "reporting"],
        ["apikey", "list"],
        ["apikey", "revoke", "nosuchid"],
        ["source", "set", "usage", "--mode", "sync"],
        ["source", "strategy", "usage.main.events", "append", "--cursor", "id"],
        ["sync", "usage"],
        ["source", "show", "usage"],
        ["query", "SELECT count(*) AS n, sum(qty) AS q FROM usage.main.events"],
        ["events", "create", "calls", "--column", "n:DECIMAL(10,2)"],
        ["events", "push", "calls", str(d["root"] / "calls.ndjson")],
        ["events", "amend", "calls", "e2", str(d["root"] / "fix.json")],
        ["events", "void", "calls", "e1"],
        ["events", "push", "nostream", str(d["root"] / "calls.ndjson")],
        ["query", "SELECT id, customer_id, n FROM local.events.calls ORDER BY id"],
        ["load", str(d["root"] / "prices.csv"), "--table", "prices"],
        ["load", str(d["root"] / "prices.csv"), "--table", "prices"],  # unchanged
        ["query", "SELECT * FROM local.uploads.prices ORDER BY plan"],
        ["load", str(d["root"] / "prices.csv"), "--table", "typed", "--column", "plan:VARCHAR",
         "--column", "price:DECIMAL(10,4)"],
        ["describe", "local.uploads.typed"],
        ["events", "backfill", "open", "calls", "--from", "2026-09-01", "--to", "2026-09-02"],
        ["events", "backfill", "show", "nosuchbackfill"],
        ["rows", "create", "credits", "--column", "customer_id:VARCHAR",
         "--column", "amount:DECIMAL(18,2)", "--key", "customer_id"],
        ["rows", "insert", "credits", "--set", "customer_id=1", "--set", "amount=5.25"],
        ["rows", "insert", "credits", "--set", "customer_id=1", "--set", "amount=1"],  # taken
        ["rows", "insert", "credits", "--set", "customer_id=3", "--set", "amount=0.125"],
        ["rows", "update", "credits", "--key", "customer_id=1", "--set", "amount=6"],
        ["rows", "delete", "credits", "--key", "customer_id=1"],
        ["rows", "audit", "credits"],
        ["aggregate", "apply", str(d["root"] / "aggregates")],
        ["aggregate", "apply", str(d["root"] / "aggregates")],  # unchanged
        ["aggregate", "list"],
        ["aggregate", "show", "spend"],
        ["aggregate", "evaluate", "spend", *period],
        ["aggregate", "evaluate", "spend", *period, "--customer", "1", "--customer", "7",
         "-f", "json"],
        ["aggregate", "evaluate", "spnd", *period],
        ["aggregate", "dry-run", str(d["root"] / "draft.sql"), *period],
        ["source", "remove", "crm"],
        ["source", "list"],
    ]


#: What differs by nature between two runs, masked before comparing.
MASKS = [
    (re.compile(r"\b\d+(\.\d+)? ms\b"), "<ms>"),
    (re.compile(r"\b\d+\.\d+ ?s\b"), "<s>"),
    (re.compile(r"mq_[0-9a-f]{8}_[\w-]+"), "<key>"),
    (re.compile(r"\b[0-9a-f]{8}\b(?=  read|  ingest|  admin| with scope)"), "<key id>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( ?(UTC|[+-]\d\d:?\d\d|Z))?"),
     "<time>"),
    (re.compile(r'"(id|seconds|evaluated_at|started_at|staleness)": ("[^"]*"|[\d.]+)'),
     r'"\1": <v>'),
    (re.compile(r"\b(\d+(\.\d+)?[dhms])+ old\b"), "<age> old"),  # a replica's staleness
    (re.compile(r"evaluation [0-9a-f-]{8,}"), "evaluation <id>"),
    (re.compile(r"\bbf_[0-9a-f]+\b"), "<backfill>"),
]


def _masked(text: str, root: Path) -> str:
    text = text.replace(str(root), "<root>")
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def _run(script: list[list[str]], home: Path, root: Path, served: bool = False
         ) -> list[tuple[int, str]]:
    runner = CliRunner()
    out = []
    for args in script:
        result = runner.invoke(main, [*args, "--home", str(home)])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        text = _masked(result.stdout + "\n--- stderr ---\n" + result.stderr, root)
        if served and args[:2] == ["rows", "audit"]:
            # The one difference by nature (docs/http-api.md): the audit records who changed a
            # row, and through the server that is the owner's socket, not the command line.
            assert " cli " not in text
            text = text.replace(" owner ", " cli ")
        out.append((result.exit_code, text))
    return out


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory) -> tuple[list, list, list[list[str]]]:
    base = tmp_path_factory.mktemp("through_server")
    data = _data(base / "data")
    script = _script(data)
    alone = _run(script, base / "alone", data["root"])
    served_home = base / "served"
    CliRunner().invoke(main, ["status", "--home", str(served_home)])  # (makes the folder)
    with serve(served_home):
        assert wait_until(lambda: read_presence(served_home) is not None, timeout=10)
        through = _run(script, served_home, data["root"], served=True)
    return alone, through, script


def test_every_command_prints_the_same_through_a_running_server(both_ways):
    alone, through, script = both_ways
    differ = [(" ".join(args), want, got)
              for args, want, got in zip(script, alone, through, strict=True) if want != got]
    assert not differ, "\n\n".join(f"{args}\n  alone:  {want!r}\n  served: {got!r}"
                                     for args, want, got in differ)


def test_the_script_exercises_every_group_and_its_refusals(both_ways):
    alone, _, script = both_ways
    groups = {args[0] for args in script}
    assert {"source", "sync", "tables", "describe", "query", "explain", "aggregate", "events",
            "load", "rows", "apikey", "settings"} <= groups
    refused = [" ".join(args) for args, (code, _) in zip(script, alone, strict=True) if code]
    assert len(refused) >= 8, refused  # (errors are compared too, not only successes)
    by_command = dict(zip((" ".join(a) for a in script), alone, strict=True))
    assert "did you mean" in by_command["source show crn"][1]
    assert "DECIMAL(10,4)" in by_command["describe local.uploads.typed"][1]  # (declared)
    listed = by_command["query SELECT id, name, credit FROM crm.main.customers ORDER BY id "
                        "-f csv"][1]
    assert listed.startswith("id,name,credit\n1,Ann,10.50\n2,O'Brien,\n3,Zoë,0.01\n")
    evaluation = next(text for args, (_, text) in zip(script, alone, strict=True)
                      if args[:2] == ["aggregate", "evaluate"] and "json" in args)
    rows = re.findall(r'"customer_id": (\d+),\n\s+"quantity": "([\d.]+)"', evaluation)
    assert dict(rows) == {"1": "3.750000", "7": "0.000000"}
