"""A running ``meterql serve`` can be found: ``server.json`` in its workspace (0600) names its
URL and pid while it listens, other commands are told who holds the workspace, a clean stop
removes the file, and a SIGKILL leaves nothing the next start cannot take over."""

from __future__ import annotations

import json
import os
import signal
import stat

import httpx
import pytest

import meterql
from meterql.errors import WorkspaceError
from meterql.server.presence import read_presence
from tests.support.served import cli, serve


def _home(tmp_path):
    home = tmp_path / "home"
    meterql.connect(home).close()
    return home


def test_a_running_server_is_named_where_commands_find_it(tmp_path):
    home = _home(tmp_path)
    with serve(home) as served:
        path = home / "server.json"
        record = json.loads(path.read_text())
        assert record["url"] == served.base and record["pid"] == served.proc.pid
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        presence = read_presence(home)
        assert presence is not None and presence.url == served.base

        with pytest.raises(WorkspaceError) as held:  # (the folder itself stays the server's)
            meterql.connect(home)
        assert f"in use by meterql serve on {served.base} (pid {served.proc.pid})" in str(
            held.value)
        assert "meterql.connect(URL, key=...)" in str(held.value)
        # ... and a command works through the server instead
        assert "┃ table ┃" in cli("tables", "--home", str(home)).stdout

        again = cli("serve", "--home", str(home), "--port", "1", check=False)
        assert again.returncode != 0 and "in use by meterql serve" in again.stderr
        assert json.loads(path.read_text())["pid"] == served.proc.pid  # not overwritten
    assert served.proc.returncode == -signal.SIGTERM  # (uvicorn's way: the signal raised again)
    assert not path.exists() and read_presence(home) is None


def test_a_killed_server_leaves_nothing_the_next_start_cannot_take_over(tmp_path):
    home = _home(tmp_path)
    with serve(home) as first:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    path = home / "server.json"
    assert json.loads(path.read_text())["pid"] == first.proc.pid  # left behind
    assert read_presence(home) is None  # ... and known to be stale
    with serve(home) as second:
        assert json.loads(path.read_text())["pid"] == second.proc.pid
        assert read_presence(home).url == second.base
        status = json.loads(cli("status", "--home", str(home)).stdout)
        assert status["owner"]["pid"] == second.proc.pid  # (commands reach the live one)
    assert not path.exists()
    with meterql.connect(home) as ws:  # and the folder is free again
        assert ws.sources() == []


def test_the_owners_socket_stands_for_the_admin_scope_and_tcp_still_needs_a_key(tmp_path):
    home = _home(tmp_path)
    with serve(home) as served:
        presence = read_presence(home)
        assert presence is not None and presence.socket == str(home / "server.sock")
        assert stat.S_IMODE(os.stat(presence.socket).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(presence.socket).st_mode)
        owner = httpx.Client(transport=httpx.HTTPTransport(uds=presence.socket),
                             base_url="http://meterql", timeout=10)
        status = owner.get("/v1/status")
        assert status.status_code == 200 and status.json()["owner"]["pid"] == served.proc.pid
        made = owner.post("/v1/keys", json={"scope": "read", "name": "made beside the server"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]

        assert httpx.get(f"{served.base}/v1/status").status_code == 401  # TCP: a key, always
        read = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{served.base}/v1/sources", headers=read).status_code == 200
        assert httpx.get(f"{served.base}/v1/status", headers=read).status_code == 403
        owner.close()
    assert not (home / "server.sock").exists()


def test_meterql_status_works_beside_a_running_server_and_without_one(tmp_path):
    home = _home(tmp_path)
    with meterql.connect(home) as ws:
        ws.events.create_stream("calls")
    alone = json.loads(cli("status", "--home", str(home)).stdout)
    assert alone["owner"] is None and [s["name"] for s in alone["streams"]] == ["calls"]
    with serve(home) as served:
        beside = json.loads(cli("status", "--home", str(home)).stdout)  # not "in use"
        assert beside["owner"]["pid"] == served.proc.pid
        assert {k: v for k, v in beside.items() if k != "owner"} == \
            {k: v for k, v in alone.items() if k != "owner"}
    assert json.loads(cli("status", "--home", str(home)).stdout)["owner"] is None


def test_a_refusal_through_the_owners_socket_is_the_same_error(tmp_path):
    from meterql.client import Transport
    from meterql.errors import InvalidSettingError

    home = _home(tmp_path)
    with serve(home):
        presence = read_presence(home)
        with pytest.raises(InvalidSettingError) as caught:
            Transport.owner(presence).json("PUT", "/v1/settings/http_max_body", json={"value": 2})
    with meterql.connect(home) as ws, pytest.raises(InvalidSettingError) as local:
        ws.settings.set("http_max_body", 2)
    assert str(caught.value) == str(local.value)
    assert "did you mean 'http_max_body_mb'" in str(caught.value)
