"""Where a running ``meterql serve`` can be found: ``<workspace>/server.json``.

The process that serves a workspace holds its lock (see :class:`meterql.Workspace`); other
commands on the same folder find the server here (its URL and pid) instead of a bare "in use".
It also names the server's Unix socket, ``<workspace>/server.sock`` (0600 in the workspace's
0700 folder), through which the workspace's owner is served with the admin scope and no key.
The file is written when the server is listening (0600, written whole to a temporary name and
renamed, so a reader never sees half of it), and removed when it stops cleanly. After a crash
(SIGKILL) the file stays behind: :func:`read_presence` answers ``None`` when its process is
gone, and the next ``meterql serve`` takes the lock and writes its own.

Example:
    >>> import os, tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> path = write_presence(home, "http://127.0.0.1:8080")
    >>> read_presence(home).url, oct(path.stat().st_mode & 0o777)
    ('http://127.0.0.1:8080', '0o600')
    >>> remove_presence(home); read_presence(home) is None
    True
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket as socket_module
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meterql.file_modes import private_opener

FILE = "server.json"

log = logging.getLogger("meterql.server")


@dataclass(frozen=True)
class Presence:
    """A live server of a workspace."""

    url: str
    pid: int
    started: str  # ISO 8601, UTC
    #: the owner's Unix socket (admin scope without a key), if the server opened one
    socket: str | None = None

    def describe(self) -> str:
        """``meterql serve on http://127.0.0.1:8080 (pid 1234)``."""
        return f"meterql serve on {self.url} (pid {self.pid})"


def write_presence(home: Path, url: str, socket: str | None = None) -> Path:
    """Announce this process as the server of ``home`` at ``url`` (and ``socket``)."""
    record = {"url": url, "pid": os.getpid(), "socket": socket,
              "started": datetime.now(UTC).isoformat(timespec="seconds")}
    path, partial = home / FILE, home / f"{FILE}.partial"
    with open(partial, "w", opener=private_opener) as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return path


def read_presence(home: Path) -> Presence | None:
    """The live server of ``home``, or ``None`` (no file, a file that does not parse, or a
    process that is gone)."""
    try:
        record = json.loads((home / FILE).read_text())
        presence = Presence(str(record["url"]), int(record["pid"]), str(record["started"]),
                            None if record.get("socket") is None else str(record["socket"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return presence if _alive(presence.pid) else None


def remove_presence(home: Path) -> None:
    """Forget this process's announcement and its socket (files another process wrote are
    left alone)."""
    path = home / FILE
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        record = json.loads(path.read_text())
        if int(record["pid"]) == os.getpid():
            path.unlink()
            if record.get("socket"):
                os.unlink(record["socket"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # (alive, another user's)
    return True


#: The owner's socket, in the workspace folder.
SOCKET = "server.sock"


def owner_socket(home: Path) -> socket_module.socket | None:
    """A listening Unix socket at ``<home>/server.sock``, 0600 (a socket left by a killed
    server is replaced: the caller holds the workspace lock); ``None`` when the path is
    too long for a Unix socket (the server then listens on TCP only)."""
    path = str(home / SOCKET)
    if len(path.encode()) >= 104:  # (sun_path: 108 bytes on Linux, 104 on macOS)
        log.warning("the workspace path is too long for a Unix socket; serving TCP only")
        return None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock
