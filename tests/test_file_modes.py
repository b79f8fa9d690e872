"""What a workspace writes is private to its owner: folders 0700, files 0600, whatever the
umask (and meterql never changes the umask)."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

import meterql
from meterql.access.keys import create_key


@pytest.fixture()
def loose_umask():
    """The usual umask (022: files 0644, folders 0755), so meterql has something to fix."""
    before = os.umask(0o022)
    try:
        yield
        assert os.umask(0o022) == 0o022, "meterql changed the process umask"
    finally:
        os.umask(before)


def modes(home: Path) -> dict[str, str]:
    """Every path under ``home`` (and home itself) -> its permission bits, in octal."""
    out = {".": oct(stat.S_IMODE(home.stat().st_mode))}
    for root, folders, files in os.walk(home):
        for name in folders + files:
            path = Path(root) / name
            out[str(path.relative_to(home))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return out


def has_default_acl(folder: Path) -> bool:
    try:
        return bool(os.getxattr(folder, "system.posix_acl_default"))
    except (AttributeError, OSError):
        return False


def not_private(home: Path) -> dict[str, str]:
    wrong = {}
    for name, mode in modes(home).items():
        want = "0o700" if (home / name).is_dir() else "0o600"
        if mode != want:
            wrong[name] = mode
    if not has_default_acl(home):
        # Without ACLs on this file system, the write-ahead logs DuckDB creates by itself after
        # each checkpoint keep the umask's mode (inside the 0700 folder).
        wrong = {k: v for k, v in wrong.items() if not k.endswith(".wal")}
    return wrong


def test_everything_a_workspace_writes_is_private(tmp_path, loose_umask):
    lite = tmp_path / "crm.db"
    with sqlite3.connect(lite) as con:
        con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, plan TEXT)")
        con.execute("INSERT INTO accounts VALUES (1, 'starter')")
    dk = tmp_path / "usage.duckdb"
    with duckdb.connect(str(dk)) as con:
        con.execute("CREATE TABLE events AS SELECT 'acme' AS customer_id, 1 AS qty")
    home = tmp_path / "home"
    parent_mode = stat.S_IMODE(tmp_path.stat().st_mode)
    now = datetime.now(UTC).isoformat()
    with meterql.connect(home) as ws:
        ws.sources.add("crm", f"sqlite:///{lite}")
        ws.sources.add("dk", f"duckdb://{dk}", mode="sync")
        [report] = ws.sync("dk")
        assert report.error is None
        ws.events.ingest("calls", [{"id": "e1", "timestamp": now, "customer_id": "acme"}])
        ws.uploads.load(b"plan,price\nstarter,10.5\n", "prices")
        ws.manual.create("credits", {"customer_id": "VARCHAR"}, ["customer_id"])
        ws.manual.insert("credits", {"customer_id": "acme"})
        create_key(ws.keys, "read")
        ws.settings.set("plan_cache_size", 10)
        assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(1,)]
        written = modes(home)
        assert {"catalog.duckdb", "local.duckdb", "events.log", ".lock", "replicas",
                "replicas/dk.duckdb"} <= set(written), written
        assert not_private(home) == {}, written  # while the workspace is open
    assert not_private(home) == {}, modes(home)  # and once it is closed
    # nothing outside the workspace was touched
    assert stat.S_IMODE(lite.stat().st_mode) == 0o644
    assert stat.S_IMODE(tmp_path.stat().st_mode) == parent_mode


def test_an_older_workspace_is_made_private_when_opened(tmp_path, loose_umask):
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.events.ingest("calls", [{"id": "e1", "timestamp": datetime.now(UTC).isoformat(),
                                    "customer_id": "acme"}])
    (home / "replicas").mkdir()
    (home / "replicas" / "old.duckdb").write_bytes(b"")
    (home / "notes.txt").write_text("not meterql's")
    for root, _, files in os.walk(home):  # as an older version left it
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)
    assert not_private(home)
    meterql.connect(home).close()
    wrong = not_private(home)
    assert wrong == {"notes.txt": "0o644"}, wrong  # a file meterql did not make is left alone
