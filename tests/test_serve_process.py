"""The HTTP API as a real process: ``meterql serve`` over a workspace made by another process,
keys made with the real CLI, what the log shows (and never shows), cancellation when a client
goes away mid-query, and a schemathesis run over every operation of the live OpenAPI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

import meterql
from tests.support.waiting import sleeping_backends, wait_until

pytestmark = pytest.mark.postgres

METERQL = str(Path(sys.executable).parent / "meterql")
USAGE_SQL = (
    "CREATE TABLE usage (id int PRIMARY KEY, customer_id text NOT NULL, ts timestamptz NOT NULL,"
    " amount numeric(12,2));"
    "INSERT INTO usage SELECT g, 'c' || (g % 3), '2026-10-01'::timestamptz + g * interval '1 day',"
    " g * 1.5 FROM generate_series(1, 10) g;"
    "CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(30);"
)


# -- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "METERQL_HOME"}


def cli(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([METERQL, *args], capture_output=True, text=True, env=clean_env(),
                          timeout=60)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Server:
    def __init__(self, base: str, proc: subprocess.Popen, log_path: Path, db: str,
                 keys: dict[str, str], key_output: str, password: str) -> None:
        self.base, self.proc, self.log_path, self.db = base, proc, log_path, db
        self.keys, self.key_output, self.password = keys, key_output, password

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# -- the server process ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(pg_cluster, pg_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    db = pg_database("serve", USAGE_SQL)
    con = duckdb.connect(str(root / "meters.duckdb"))
    con.execute("CREATE TABLE meters AS SELECT range::INTEGER AS id, 'gb' AS unit FROM range(4)")
    con.close()
    home = root / "home"
    ws = meterql.connect(home)
    try:
        ws.add_source("pg", pg_cluster.uri(db))
        ws.add_source("dk", f"duckdb://{root / 'meters.duckdb'}")
    finally:
        ws.close()  # one process owns a workspace folder at a time

    keys: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for scope in ("read", "admin"):
        proc = cli("apikey", "create", "--scope", scope, "--name", f"{scope} key",
                   "--home", str(home))
        outputs[scope] = proc.stdout
        keys[scope] = proc.stdout.strip().splitlines()[-1]

    port = free_port()
    log_path = root / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [METERQL, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
             "--no-sync", "--timeout", "20"],
            stdout=log_file, stderr=subprocess.STDOUT, env=clean_env(), cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                return True  # exited: fail below with its log
            try:
                return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(healthy, timeout=20, interval=0.1), "server did not come up"
        assert proc.poll() is None, log_path.read_text()
        yield Server(base, proc, log_path, db, keys, outputs["read"], pg_cluster.password)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- queries, keys and the log -----------------------------------------------------------------


def test_the_real_server_answers_and_keeps_secrets_out_of_the_log(served):
    read = served.keys["read"]
    # the CLI printed the key alone on its last line, in the documented shape
    last = served.key_output.rstrip("\n").splitlines()[-1]
    assert last == read and re.fullmatch(r"mq_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", read), last
    assert served.keys["admin"] != read

    body = {"sql": "SELECT customer_id, sum(amount) AS total, count(*) AS n "
                   "FROM pg.public.usage WHERE id <= :top GROUP BY customer_id "
                   "ORDER BY customer_id", "params": {"top": 6}}
    response = httpx.post(f"{served.base}/v1/query", json=body, headers=auth(read), timeout=30)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert [c["name"] for c in payload["columns"]] == ["customer_id", "total", "n"]
    # ids 1..6: c0 = {3, 6}, c1 = {1, 4}, c2 = {2, 5}; amount = 1.5 * id
    assert [[r[0], float(r[1]), r[2]] for r in payload["rows"]] == [
        ["c0", 13.5, 2], ["c1", 7.5, 2], ["c2", 10.5, 2]]
    assert payload["row_count"] == 3 and payload["truncated"] is False
    assert response.headers["x-meterql-rows"] == "3"

    # a federated join across the two sources, through the real process
    joined = httpx.post(f"{served.base}/v1/query", headers=auth(read), timeout=30, json={
        "sql": "SELECT count(*) AS n FROM pg.public.usage AS u JOIN dk.main.meters AS m "
               "ON m.id = u.id"})
    assert joined.status_code == 200 and joined.json()["rows"] == [[3]], joined.text

    assert httpx.post(f"{served.base}/v1/query", json=body, timeout=10).status_code == 401
    scoped = httpx.post(f"{served.base}/v1/aggregates", headers=auth(read), timeout=10,
                        json={"name": "n", "sql": "SELECT 1"})
    assert scoped.status_code == 403

    sources = httpx.get(f"{served.base}/v1/sources", headers=auth(read), timeout=10)
    assert sources.status_code == 200
    by_name = {s["name"]: s for s in sources.json()}
    assert set(by_name) == {"pg", "dk"} and by_name["pg"]["tables"] == 2
    assert "***" in by_name["pg"]["uri"]
    assert served.password not in sources.text

    key_id = read.split("_")[1]
    secret = read.split("_", 2)[2]
    assert wait_until(lambda: "POST /v1/query 200" in served.log(), timeout=5), served.log()
    log = served.log()
    assert re.search(rf"POST /v1/query 200 [0-9.]+ ms key={key_id}", log), log
    assert "POST /v1/query 401" in log and "POST /v1/aggregates 403" in log
    assert "GET /v1/sources 200" in log
    for secret_text in (read, served.keys["admin"], secret, served.password):
        assert secret_text not in log


def test_a_key_revoked_through_the_api_fails_on_the_next_request(served):
    admin = auth(served.keys["admin"])
    made = httpx.post(f"{served.base}/v1/keys", json={"scope": "read", "name": "short-lived"},
                      headers=admin, timeout=10)
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    with httpx.Client(base_url=served.base, headers=auth(key), timeout=10) as client:
        assert client.get("/v1/sources").status_code == 200
        listed = httpx.get(f"{served.base}/v1/keys", headers=admin, timeout=10).json()
        assert [k["name"] for k in listed if k["id"] == key_id] == ["short-lived"]
        gone = httpx.delete(f"{served.base}/v1/keys/{key_id}", headers=admin, timeout=10)
        assert gone.status_code == 204, gone.text
        after = client.get("/v1/sources")  # the next request, on the same connection
        assert after.status_code == 401 and "revoked" in after.json()["detail"], after.text
    assert wait_until(lambda: f"DELETE /v1/keys/{key_id} 204" in served.log(), timeout=5)
    assert key not in served.log() and key.split("_", 2)[2] not in served.log()


# -- cancellation ------------------------------------------------------------------------------


def test_a_client_that_goes_away_cancels_its_query_at_the_source(served, pg_cluster):
    assert sleeping_backends(pg_cluster, served.db) == 0
    outcome: dict[str, object] = {}

    def client() -> None:
        t0 = time.monotonic()
        try:
            r = httpx.post(f"{served.base}/v1/query", headers=auth(served.keys["read"]),
                           json={"sql": "SELECT x FROM pg.public.slow"}, timeout=2.0)
            outcome["response"] = r.status_code
        except httpx.TimeoutException as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    assert wait_until(lambda: sleeping_backends(pg_cluster, served.db) == 1, timeout=10), \
        "the slow query never ran at the source"
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), httpx.ReadTimeout), outcome  # the client gave up
    gone_at = time.monotonic()
    # pg_sleep(30) would run for ~28 s more and the server's limit is 20 s: only the
    # disconnect can stop it this soon
    assert wait_until(lambda: sleeping_backends(pg_cluster, served.db) == 0, timeout=4), \
        "the query kept running at the source after its client went away"
    assert time.monotonic() - gone_at < 4
    assert wait_until(lambda: "POST /v1/query 499" in served.log(), timeout=5), served.log()

    after = httpx.post(f"{served.base}/v1/query", headers=auth(served.keys["read"]), timeout=30,
                       json={"sql": "SELECT count(*) AS n FROM pg.public.usage"})
    assert after.status_code == 200 and after.json()["rows"] == [[10]], after.text
    assert served.proc.poll() is None


# -- schemathesis over the live OpenAPI --------------------------------------------------------

EXPECTED_OPERATIONS = {
    "GET /v1/health", "POST /v1/query", "GET /v1/aggregates", "POST /v1/aggregates",
    "GET /v1/aggregates/{name}", "POST /v1/aggregates/{name}/evaluate",
    "POST /v1/aggregates/{name}/dry-run", "GET /v1/evaluations", "GET /v1/sources",
    "GET /v1/tables", "GET /v1/tables/{name}",
}
AGGREGATE = {
    "name": "usage_amount",
    "sql": "SELECT customer_id, sum(amount) AS quantity FROM pg.public.usage "
           "WHERE ts >= :period_start AND ts < :period_end GROUP BY customer_id",
}
# path parameters naming things that exist, so generated bodies and queries get past the 404s
EXISTING = {"/v1/aggregates/{name}": "usage_amount",
            "/v1/aggregates/{name}/evaluate": "usage_amount",
            "/v1/aggregates/{name}/dry-run": "usage_amount",
            "/v1/tables/{name}": "pg.public.usage"}


def test_generated_requests_never_get_a_server_error(served):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.core.result import Ok

    headers = auth(served.keys["admin"])
    saved = httpx.post(f"{served.base}/v1/aggregates", json=AGGREGATE, headers=headers,
                       timeout=30)
    assert saved.status_code in (200, 201), saved.text
    spec = httpx.get(f"{served.base}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    log_start = len(served.log())
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    labels = {f"{op.method.upper()} {op.path}" for op in operations}
    assert EXPECTED_OPERATIONS <= labels, labels

    sent: dict[str, int] = {}
    statuses: dict[tuple[str, str], set[int]] = {}
    failures: list[str] = []
    unbreakable: set[str] = set()
    positive, negative = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE

    def fuzz(operation, mode, pass_name, **fixed) -> None:
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=12, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode, **fixed))
        def run(case) -> None:
            response = case.call(base_url=served.base, headers=headers, timeout=30)
            sent[label] = sent.get(label, 0) + 1
            statuses.setdefault((label, pass_name), set()).add(response.status_code)
            try:
                case.validate_response(response, checks=[not_a_server_error], headers=headers)
            except FailureGroup as exc:
                failures.append(f"{label} ({pass_name}): {exc}")

        try:
            run()
        except Unsatisfiable:
            # an operation with nothing to break (e.g. no parameters) has no negative cases
            if mode is positive:
                raise
            unbreakable.add(label)

    for operation in operations:
        fuzz(operation, positive, "positive")
        fuzz(operation, negative, "negative")
        if operation.path in EXISTING:
            fuzz(operation, positive, "existing",
                 path_parameters={"name": EXISTING[operation.path]})

    assert served.proc.poll() is None, "the server died during the run"
    log = served.log()[log_start:]
    tracebacks = [line for line in log.splitlines() if "Error" in line and ":" in line
                  and not line.startswith((" ", "2"))]
    assert not failures, "\n\n".join(failures) + "\n\nerrors in the server log:\n" + \
        "\n".join(tracebacks)
    assert "Traceback" not in log, log
    # every operation was exercised
    assert set(sent) == labels, sent
    assert all(n >= 5 for label, n in sent.items() if label != "GET /v1/health"), sent
    seen = json.dumps({f"{k[0]} ({k[1]})": sorted(v) for k, v in statuses.items()})
    # negative data exists for every operation that takes parameters or a body
    assert unbreakable <= {"GET /v1/health", "GET /v1/aggregates", "GET /v1/sources"}, unbreakable
    # with the admin key every valid request got past authentication and scope checks
    valid = {label: codes for (label, name), codes in statuses.items() if name != "negative"}
    assert not any(codes & {401, 403} for codes in valid.values()), seen
    for label in ("GET /v1/aggregates", "GET /v1/sources", "GET /v1/tables",
                  "GET /v1/evaluations"):
        assert 200 in valid[label], seen
    # with existing names the handlers ran: the aggregate and the table were found
    assert 200 in statuses[("GET /v1/aggregates/{name}", "existing")], seen
    assert 200 in statuses[("GET /v1/tables/{name}", "existing")], seen
    # generated SQL reached the engine and was refused as a client error, not a crash
    assert 400 in valid["POST /v1/query"] and 400 in valid["POST /v1/aggregates"], seen


def test_an_unknown_dialect_is_a_client_error(served):
    # Found by the schemathesis run: sqlglot's ValueError used to escape as a 500.
    headers = auth(served.keys["admin"])
    period = {"from": "2026-10-01", "to": "2026-11-01"}
    saved = httpx.post(f"{served.base}/v1/aggregates", json=AGGREGATE, headers=headers,
                       timeout=30)
    assert saved.status_code in (200, 201), saved.text
    answers = [
        httpx.post(f"{served.base}/v1/aggregates", headers=headers, timeout=30,
                   json={**AGGREGATE, "name": "dialect_probe", "dialect": "nope"}),
        httpx.post(f"{served.base}/v1/aggregates/usage_amount/dry-run", headers=headers,
                   timeout=30, json={**period, "sql": AGGREGATE["sql"], "dialect": "nope"}),
    ]
    if served.proc.poll() is not None:
        pytest.fail("the server died")
    assert [a.status_code for a in answers] == [400, 400], [a.text for a in answers]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
