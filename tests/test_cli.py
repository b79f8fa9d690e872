"""The command line, driven through click's runner and, for the entry point, a real process."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from meterql.cli import main
from tests.support.terminal import terminal_env


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    lite = tmp_path / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT, credit DECIMAL(10,2))")
    con.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(1, "Ann", "10.50"), (2, "O'Brien", None), (3, "Zoë", "0.01")],
    )
    con.commit()
    con.close()
    dk = tmp_path / "usage.duckdb"
    con = duckdb.connect(str(dk))
    con.execute("CREATE TABLE events (customer_id BIGINT, qty DECIMAL(18,6))")
    con.execute("INSERT INTO events VALUES (1, 1.5), (1, 2.25), (3, 0.000001), (9, 4)")
    con.close()
    return {"lite": lite, "dk": dk, "home": tmp_path / "home"}


def run(files: dict[str, Path], *args: str, input: str | None = None):
    runner = CliRunner()
    return runner.invoke(main, [*args, "--home", str(files["home"])], input=input)


def add_both(files):
    assert run(files, "source", "add", "crm", f"sqlite://{files['lite']}").exit_code == 0
    assert run(files, "source", "add", "usage", f"duckdb://{files['dk']}").exit_code == 0


def test_source_lifecycle(files):
    add_both(files)
    listing = run(files, "source", "list")
    assert listing.exit_code == 0
    assert "crm" in listing.output and "usage" in listing.output
    shown = run(files, "source", "show", "crm")
    assert "crm.main.customers" in shown.output and "sqlite" in shown.output
    tested = run(files, "source", "test", "crm")
    assert tested.exit_code == 0 and "SQLite" in tested.output
    tables = run(files, "tables")
    assert "crm.main.customers" in tables.output and "usage.main.events" in tables.output
    described = run(files, "describe", "customers")
    assert "DECIMAL(10,2)" in described.output  # (as query headers name it)
    # A new table at the source shows up after a refresh.
    con = sqlite3.connect(files["lite"])
    con.execute("CREATE TABLE plans (name TEXT)")
    con.commit()
    con.close()
    assert "crm.main.plans" not in run(files, "tables", "crm").output
    assert run(files, "source", "refresh", "crm").exit_code == 0
    assert "crm.main.plans" in run(files, "tables", "crm").output
    removed = run(files, "source", "remove", "usage")
    assert removed.exit_code == 0
    assert "usage" not in run(files, "source", "list").output


def test_query_formats(files, tmp_path):
    add_both(files)
    sql = (
        "SELECT c.name, sum(e.qty) AS qty FROM usage.main.events e "
        "JOIN crm.main.customers c ON c.id = e.customer_id GROUP BY c.name ORDER BY c.name"
    )
    as_csv = run(files, "query", sql, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.output)))
    assert rows == [["name", "qty"], ["Ann", "3.750000"], ["Zoë", "0.000001"]]
    as_json = json.loads(run(files, "query", sql, "-f", "json").output)
    assert as_json == [{"name": "Ann", "qty": "3.750000"}, {"name": "Zoë", "qty": "0.000001"}]
    lines = run(files, "query", sql, "-f", "jsonl").output.strip().splitlines()
    assert [json.loads(x)["name"] for x in lines] == ["Ann", "Zoë"]
    assert run(files, "query", sql).output == as_csv.output  # not a terminal: CSV
    table_out = run(files, "query", sql, "-f", "table")
    assert table_out.output.splitlines()[2:5] == [
        "┃ VARCHAR ┃ DECIMAL(38,6) ┃", "┡━━━━━━━━━╇━━━━━━━━━━━━━━━┩", "│ Ann     │      3.750000 │"]
    assert "2 rows in" in table_out.output
    parquet = tmp_path / "out.parquet"
    assert run(files, "query", sql, "-f", "parquet", "-o", str(parquet)).exit_code == 0
    assert pq.read_table(parquet).column("qty").type == pa.decimal128(38, 6)
    arrow = tmp_path / "out.arrow"
    assert run(files, "query", sql, "-f", "arrow", "-o", str(arrow)).exit_code == 0
    with pa.ipc.open_stream(arrow.read_bytes()) as reader:
        assert reader.read_all().num_rows == 2
    assert not list(tmp_path.glob("*.partial"))


def test_query_params_and_stdin(files):
    add_both(files)
    out = run(
        files, "query", "SELECT name FROM customers WHERE id = :id", "--param", "id=3", "-f", "csv"
    )
    assert out.output.splitlines() == ["name", "Zoë"]
    injected = run(
        files,
        "query",
        "SELECT name FROM customers WHERE name = :n",
        "-p",
        "n=x' OR '1'='1",
        "-f",
        "csv",
    )
    assert injected.output.splitlines() == ["name"]
    piped = run(files, "query", "-", "-f", "csv", input="SELECT count(*) AS n FROM customers")
    assert piped.output.splitlines() == ["n", "3"]


def test_max_rows_warns(files):
    add_both(files)
    out = run(
        files, "query", "SELECT id FROM customers ORDER BY id", "--max-rows", "2", "-f", "csv"
    )
    assert out.exit_code == 0
    assert out.stdout.splitlines() == ["id", "1", "2"]
    assert "cut at 2 rows" in out.stderr


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM custmers", "did you mean 'crm.main.customers'"),
        ("DELETE FROM customers", "only SELECT, WITH, VALUES and EXPLAIN"),
        ("SELECT nme FROM customers", "did you mean 'name'"),
        ("SELECT id FROM customers WHERE", "line 1, column"),
    ],
)
def test_errors_are_one_clear_line(files, sql, expected):
    add_both(files)
    out = run(files, "query", sql)
    assert out.exit_code == 1
    assert expected in out.stderr
    assert "Traceback" not in out.output
    assert out.stderr.startswith("error:")


def test_parse_error_shows_caret(files):
    add_both(files)
    out = run(files, "query", "SELECT id FROM customers WHERE")
    lines = out.stderr.splitlines()
    assert lines[1] == "SELECT id FROM customers WHERE"
    assert lines[2].strip() == "^"


def test_bad_source_leaves_catalog_unchanged(files):
    add_both(files)
    bad = run(files, "source", "add", "x", "mysql://h/db")
    assert bad.exit_code == 1 and "unknown source kind 'mysql'" in bad.stderr
    dup = run(files, "source", "add", "crm", f"sqlite://{files['lite']}")
    assert dup.exit_code == 1 and "already exists" in dup.stderr
    missing = run(files, "source", "add", "gone", "sqlite:///nonexistent/x.db")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    names = run(files, "source", "list").output
    assert "gone" not in names and " x " not in names


def test_explain_shows_fragments(files):
    add_both(files)
    out = run(
        files,
        "explain",
        "SELECT c.name FROM usage.main.events e "
        "JOIN crm.main.customers c ON c.id = e.customer_id WHERE c.id < 3",
    )
    assert out.exit_code == 0
    assert "fragment f1 on source 'usage'" in out.output
    assert "fragment f2 on source 'crm'" in out.output
    assert 'WHERE "id" < 3' in out.output
    assert "residual in DuckDB" in out.output


def test_demo_runs_through_the_installed_entry_point(tmp_path):
    env = {**os.environ, "METERQL_HOME": str(tmp_path / "demo_home")}
    exe = Path(sys.executable).with_name("meterql")
    proc = subprocess.run(
        [str(exe), "demo"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "fragment f1 on source 'usage'" in proc.stdout
    assert "rows in" in proc.stdout
    # The demo's answer equals DuckDB's over the same files.
    from meterql.demo import DEMO_QUERY

    con = duckdb.connect()
    data = tmp_path / "demo_home" / "demo_data"
    con.execute(f"ATTACH '{data / 'usage.duckdb'}' AS usage (READ_ONLY)")
    con.execute("SET TimeZone = 'UTC'")
    import sqlite3 as s3

    rows = s3.connect(data / "crm.db").execute("SELECT id, name, plan FROM customers").fetchall()
    con.execute("ATTACH ':memory:' AS crm")
    con.execute("CREATE TABLE crm.main.customers (id BIGINT, name VARCHAR, plan VARCHAR)")
    con.executemany("INSERT INTO crm.main.customers VALUES (?, ?, ?)", rows)
    expected = con.execute(DEMO_QUERY.replace(":plan", "'growth'")).fetchall()
    import meterql

    with meterql.connect(tmp_path / "demo_home") as ws:
        got = ws.query(DEMO_QUERY, {"plan": "growth"}).rows()
    assert got == expected and len(got) > 0
    again = subprocess.run(
        [str(exe), "demo"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    # It ends on its own, saying how to open the navigator on the same folder.
    last = again.stdout.strip().splitlines()[-1]
    assert last.startswith("Data Navigator: meterql demo --serve --home ")
    assert str(tmp_path / "demo_home") in last
    # The workspace holds something for each page of the navigator, once however often the
    # demo runs: an aggregate evaluated once, an event stream, an upload, a manual table.
    with meterql.connect(tmp_path / "demo_home") as ws:
        assert [(a.name, a.version) for a in ws.aggregates.list()] == [("api_calls", 1)]
        assert len(ws.aggregates.log("api_calls")) == 1

        def count(table: str) -> int:
            return ws.query(f"SELECT count(*) FROM {table}").rows()[0][0]

        assert count("local.events.api_requests") == 600
        assert count("local.uploads.prices") == 9
        assert count("local.manual.credits") == 3
        assert len(ws.manual.audit("credits")) == 4  # the table's creation and its 3 rows


def test_demo_serve_serves_the_navigator_with_a_key_it_prints(tmp_path):
    """``meterql demo --serve``: the demo, then the navigator on it (a real process); the
    printed admin key signs in through the form, and Ctrl-C stops it (status 0)."""
    import signal

    import httpx

    import meterql
    from tests.support.served import METERQL, clean_env, free_port
    from tests.support.waiting import wait_until

    port, home = free_port(), tmp_path / "demo_home"
    with meterql.connect(home) as ws:  # (an earlier run's key, which this run revokes)
        earlier, _ = ws.keys.create("admin", "demo navigator")
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [METERQL, "demo", "--serve", "--home", str(home), "--port", str(port)],
            stdout=out, stderr=err, env=clean_env(), cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        def printed_key() -> bool:
            return proc.poll() is not None or "Ctrl-C stops" in out_path.read_text()

        assert wait_until(printed_key, timeout=90, interval=0.2), out_path.read_text()
        assert proc.poll() is None, err_path.read_text()
        lines = out_path.read_text().splitlines()
        assert "rows in" in out_path.read_text()  # the demo's query ran first
        at = lines.index(f"Data Navigator {base}/")
        assert lines[at + 1].startswith("sign in with this admin key")
        key = lines[at + 2]
        assert key.startswith("mq_")
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/v1/health").status_code == 200
            home_page = http.get("/")
            assert home_page.status_code == 303
            assert home_page.headers["location"].startswith("/signin")
            wrong = http.post("/signin", data={"key": key[:-2] + "xx", "next": "/"})
            assert wrong.status_code == 401 and "meterql_session" not in http.cookies
            signed = http.post("/signin", data={"key": key, "next": "/"})
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            assert "meterql_session" in http.cookies
            shown = http.get("/")
            assert shown.status_code == 200 and "crm" in shown.text and "usage" in shown.text
            # The key is an admin key of the workspace, made for the demo.
            keys = http.get("/v1/keys", headers={"Authorization": f"Bearer {key}"})
            assert keys.status_code == 200, keys.text
            mine = [k for k in keys.json() if key.startswith(f"mq_{k['id']}_")]
            assert [(k["scope"], k["name"]) for k in mine] == [("admin", "demo navigator")]
            assert [k["revoked_at"] is not None for k in keys.json()
                    if k["id"] == earlier] == [True]
        # Beside it, plain demo works through the server and points at it; a second --serve
        # is refused.
        beside = subprocess.run([METERQL, "demo", "--home", str(home)], capture_output=True,
                                text=True, env=clean_env(), timeout=120)
        assert beside.returncode == 0, beside.stderr
        assert beside.stdout.strip().splitlines()[-1] == (
            f"Data Navigator: {base}/ (the server holding this folder)")
        second = subprocess.run([METERQL, "demo", "--serve", "--home", str(home)],
                                capture_output=True, text=True, env=clean_env(), timeout=60)
        assert second.returncode == 2 and f"open {base} in a browser" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, err_path.read_text()
    assert "meterql server stopped" in err_path.read_text()
    assert not (home / "server.json").exists()


def test_sync_mode_from_the_command_line(files):
    added = run(files, "source", "add", "crm", f"sqlite://{files['lite']}", "--mode", "sync")
    assert added.exit_code == 0 and "meterql sync crm" in added.output
    not_yet = run(files, "query", "SELECT count(*) AS n FROM customers", "-f", "csv")
    assert not_yet.exit_code == 1 and "meterql sync crm" in not_yet.stderr
    synced = run(files, "sync")
    assert synced.exit_code == 0, synced.output
    assert "crm.main.customers: full, 3 rows copied in " in synced.output
    shown = run(files, "source", "show", "crm")
    assert "synced" in shown.output and "3 rows, full" in shown.output
    out = run(files, "query", "SELECT name, credit FROM customers ORDER BY id", "-f", "csv")
    assert out.output.splitlines() == ["name,credit", "Ann,10.50", "O'Brien,", "Zoë,0.01"]
    con = sqlite3.connect(files["lite"])
    con.execute("INSERT INTO customers VALUES (4, 'Dee', '1.00')")
    con.commit()
    con.close()
    strategy = run(files, "source", "strategy", "customers", "append", "--cursor", "id")
    assert strategy.exit_code == 0 and "append on id" in strategy.output
    again = run(files, "sync", "crm")
    # the boundary row read again is not new
    assert "crm.main.customers: append, 1 new row (2 rows read) in " in again.output
    nothing_new = run(files, "sync", "crm")
    assert "crm.main.customers: append, 0 new rows (1 row read) in " in nothing_new.output
    count = run(files, "query", "SELECT count(*) AS n FROM customers", "-f", "csv")
    assert count.output.splitlines() == ["n", "4"]
    assert run(files, "source", "set", "crm", "--mode", "direct").exit_code == 0
    direct = run(files, "query", "SELECT count(*) AS n FROM customers", "-f", "csv")
    assert direct.output.splitlines() == ["n", "4"]
    nothing = run(files, "sync")
    assert nothing.exit_code == 2 and "no source is in sync mode" in nothing.output


def test_source_options_and_the_cdc_strategy_from_the_command_line(files):
    assert run(files, "source", "add", "crm", f"sqlite://{files['lite']}").exit_code == 0
    set_option = run(files, "source", "set", "crm", "--option", "statement_timeout_ms=5000")
    assert set_option.exit_code == 0 and "statement_timeout_ms=5000" in set_option.output
    assert "option:  statement_timeout_ms=5000" in run(files, "source", "show", "crm").output
    removed = run(files, "source", "set", "crm", "--option", "statement_timeout_ms=")
    assert removed.exit_code == 0 and "options: none" in removed.output
    bad = run(files, "source", "set", "crm", "--option", "cdc_slot=Not-A-Name")
    assert bad.exit_code == 1 and "cdc_slot='Not-A-Name' is not valid" in bad.stderr
    neither = run(files, "source", "set", "crm")
    assert neither.exit_code == 2 and "give --mode and/or --option" in neither.output
    cdc = run(files, "source", "strategy", "customers", "cdc")
    assert cdc.exit_code == 1 and "cdc sync reads PostgreSQL's change log" in cdc.stderr


def test_rows_and_load_refuse_extra_decimal_places_unless_rounded(files, tmp_path):
    created = run(files, "rows", "create", "credits", "--column", "customer_id:VARCHAR",
                  "--column", "amount:DECIMAL(18,2)", "--key", "customer_id")
    assert created.exit_code == 0, created.output
    insert = ["rows", "insert", "credits", "--set", "customer_id=acme", "--set", "amount=12.345"]
    refused = run(files, *insert)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.stderr.startswith("error: local.manual.credits: column amount: 12.345 has "
                                     "more than 2 decimal places (DECIMAL(18,2))")
    assert "--round" in refused.stderr
    rounded = run(files, *insert, "--round")
    assert rounded.exit_code == 0 and json.loads(rounded.output)["amount"] == "12.35"
    update = ["rows", "update", "credits", "--key", "customer_id=acme", "--set", "amount=1.999"]
    assert run(files, *update).exit_code == 1
    assert json.loads(run(files, *update, "--round").output)["amount"] == "2.00"
    bills = tmp_path / "bills.csv"
    bills.write_text("customer,amount\nacme,1.005\nbolt,2.50\n")
    load = ["load", str(bills), "--table", "bills", "--column", "customer:VARCHAR",
            "--column", "amount:DECIMAL(18,2)"]
    refused = run(files, *load)
    assert refused.exit_code == 1
    assert "line 2: 1.005 has more than 2 decimal places (DECIMAL(18,2))" in refused.stderr
    loaded = run(files, *load, "--round")
    assert loaded.exit_code == 0 and "2 rows loaded" in loaded.output
    summed = run(files, "query", "SELECT sum(amount) AS s FROM local.uploads.bills", "-f", "csv")
    assert summed.output.splitlines() == ["s", "3.51"]
    bad_type = run(files, "load", str(bills), "--table", "other", "--column", "amount:MONEY(2")
    assert bad_type.exit_code == 1 and "is not a column type" in bad_type.stderr


def test_python_m_meterql_has_every_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "meterql", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines()
              if line.startswith("  ")}
    assert listed == set(main.list_commands(click.Context(main)))
    assert "bench" not in listed  # benchmarks run from a checkout: python -m benchmarks.harness


def test_cli_modules_import_no_private_name_and_not_the_root():
    """Command modules share only public helpers, and the root adds them (never the reverse)."""
    import ast

    folder = Path(__file__).resolve().parents[1] / "meterql" / "cli"
    problems = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                    "meterql"):
                continue
            private = [a.name for a in node.names if a.name.startswith("_")]
            if private:
                problems.append(f"{path.name}: {node.module} {private}")
            if node.module == "meterql.cli.root" and path.name != "__init__.py":
                problems.append(f"{path.name}: imports the root")
    assert not problems, problems


def test_the_installed_package_imports_nothing_of_the_checkout():
    """benchmarks/, devtools/ and tests/ are not in the wheel: meterql must not import them."""
    import ast

    package = Path(__file__).resolve().parents[1] / "meterql"
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(package)}: {n}" for n in names
                      if n.split(".")[0] in ("benchmarks", "devtools", "tests")]
    assert not found, found


# -- output: CSV on a pipe, boxes (paged when tall) on a terminal ---------------------------------

LONG = "external-reference-" + "0123456789" * 20


@pytest.fixture()
def rows_home(tmp_path: Path) -> Path:
    """A workspace with dk.main.t: 200 rows of an id, a 219-character note, a boolean and an
    interval."""
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE t AS SELECT range AS id, '{LONG}' || range AS note, "
                "range % 2 = 0 AS even, INTERVAL 1 day * range + INTERVAL 2 hour AS span "
                "FROM range(200)")
    con.close()
    home = tmp_path / "home"
    import meterql

    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
    return home


def _meterql(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("meterql")
    return subprocess.run([str(exe), *args, "--home", str(home)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, cwd=home.parent)


def test_a_piped_query_prints_csv_and_never_cuts_a_value(rows_home):
    paged = rows_home.parent / "paged"
    sql = "SELECT * FROM dk.main.t ORDER BY id"
    proc = _meterql(rows_home, "query", sql, PAGER=f"cat > {paged}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["id,note,even,span", f"0,{LONG}0,true,02:00:00",
                         f"1,{LONG}1,false,1 day 02:00:00"]  # booleans and intervals as SQL
    assert len(lines) == 201 and not paged.exists()  # every row, no pager on a pipe
    table = _meterql(rows_home, "query", sql, "--format", "table", PAGER=f"cat > {paged}")
    [last] = [line for line in table.stdout.splitlines() if f"{LONG}199" in line]
    assert [cell.strip() for cell in last.split("│")] == [  # whole, never cut to a width
        "", "199", f"{LONG}199", "false", "199 days 02:00:00", ""]
    assert "\x1b[" not in table.stdout and not paged.exists()
    assert table.stdout.splitlines()[-1].startswith("200 rows in ")
    one = _meterql(rows_home, "query", "SELECT id FROM dk.main.t WHERE id = 3", "-f", "table")
    assert one.stdout.splitlines()[-1].startswith("1 row in ")


@pytest.mark.parametrize(("extra", "env", "paged"), [
    ((), {}, True),
    (("--no-pager",), {}, False),
    ((), {"PAGER": ""}, False),
])
def test_a_table_taller_than_the_terminal_goes_through_the_pager(rows_home, extra, env, paged):
    import pexpect

    out = rows_home.parent / "paged"
    exe = str(Path(sys.executable).with_name("meterql"))

    def run_in_terminal(sql: str) -> str:
        child = pexpect.spawn(exe, ["query", sql, *extra, "--home", str(rows_home)],
                              encoding="utf-8", timeout=60, dimensions=(24, 300),
                              env=terminal_env(rows_home.parent,
                                               **{"PAGER": f"cat > {out}", **env}))
        child.expect(pexpect.EOF)
        return child.before

    screen = run_in_terminal("SELECT id, even FROM dk.main.t ORDER BY id")  # 205 lines
    if paged:
        text = out.read_text()
        assert "\x1b[1mid\x1b[0m" in text and "\x1b[2mBIGINT\x1b[0m" in text  # styled
        assert "│    199 │ false   │" in text and "200 rows in" in text
        assert "199" not in screen
        out.unlink()
    else:
        assert "│    199 │ false   │" in screen and "200 rows in" in screen
        assert not out.exists()
    short = run_in_terminal("SELECT id, even FROM dk.main.t WHERE id < 3 ORDER BY id")
    assert "│      2 │ true    │" in short and "3 rows in" in short and not out.exists()
