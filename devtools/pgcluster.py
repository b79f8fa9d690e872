"""A throwaway PostgreSQL cluster for tests and benchmarks.

The cluster lives in a fresh temporary directory, listens on 127.0.0.1 at a
free port (plus a unix socket inside that directory), and is wiped on stop.

Usage::

    with PostgresCluster() as pg:
        pg.create_database("billing")
        pg.run_sql("CREATE TABLE t (a int)", dbname="billing")
        uri = pg.uri("billing")   # postgresql://postgres:...@127.0.0.1:PORT/billing

initdb refuses to run as root, so when running as root the server binaries
are run as the ``postgres`` OS user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from urllib.parse import quote

__all__ = ["PostgresCluster", "postgres_available", "find_pg_bindir", "free_port"]

HOST = "127.0.0.1"
SUPERUSER = "postgres"
OS_USER = "postgres"  # used only when we run as root

# Settings fit for a disposable test cluster: speed over durability.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "128MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "timezone": "UTC",
    # Logical decoding for the cdc sync strategy (its tests read changes through a slot).
    "wal_level": "logical",
}

# PG* variables from the caller's environment must not redirect our clients.
_PG_ENV_VARS = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGDATA",
    "PGSSLMODE",
    "PGCONNECT_TIMEOUT",
    "PGTARGETSESSIONATTRS",
)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def find_pg_bindir() -> Path | None:
    """Directory holding initdb/pg_ctl: from PATH, else Debian's /usr/lib/postgresql/N/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent

    def major(initdb_path: str) -> int:
        version = Path(initdb_path).parent.parent.name
        return int(version) if version.isdigit() else 0

    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major, reverse=True):
        bindir = Path(cand).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    return None


def _find_psql(bindir: Path) -> str | None:
    # Prefer the psql that matches the server (and skips Debian's perl wrapper).
    local = bindir / "psql"
    if local.exists():
        return str(local)
    return shutil.which("psql")


def postgres_available() -> str | None:
    """None if a throwaway cluster can be made here, else the reason it cannot."""
    bindir = find_pg_bindir()
    if bindir is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found"
            " on PATH or in /usr/lib/postgresql/*/bin"
        )
    if _find_psql(bindir) is None:
        return "psql not found"
    if _is_root():
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root but there is no {OS_USER!r} OS user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root but runuser is not available"
    try:
        subprocess.run(
            [str(bindir / "initdb"), "--version"],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bindir / 'initdb'} --version failed: {exc}"
    return None


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _cleanup(
    bindir: Path, datadir: Path, root: Path, as_postgres: bool, keep: bool = False
) -> None:
    """Stop the server (if any) and delete the directory unless ``keep``. Safe to call twice."""
    if (datadir / "postmaster.pid").exists():
        cmd = [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-m",
            "fast" if keep else "immediate",
            "-w",
            "-t",
            "120" if keep else "30",
            "stop",
        ]
        if as_postgres:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        subprocess.run(
            cmd, capture_output=True, cwd=root if root.exists() else None, timeout=180, check=False
        )
    if not keep:
        shutil.rmtree(root, ignore_errors=True)


class PostgresCluster:
    """A disposable PostgreSQL server on 127.0.0.1; use as a context manager.

    With ``keep_dir`` the cluster lives in that directory instead and survives ``stop()``
    (the server is shut down cleanly); a later cluster on the same directory starts it again
    with its data, so a benchmark dataset is loaded once. The password is kept beside the
    data in a 0600 file.
    """

    def __init__(self, *, start_timeout: int = 60, keep_dir: Path | None = None) -> None:
        self.host = HOST
        self.port: int = 0
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(24)
        self.start_timeout = start_timeout
        self.dir: Path | None = None
        self.datadir: Path | None = None
        self.logfile: Path | None = None
        self.startup_seconds: float | None = None
        self._as_postgres = _is_root()
        self._keep_dir = Path(keep_dir).resolve() if keep_dir is not None else None
        self._finalizer: weakref.finalize | None = None
        bindir = find_pg_bindir()
        self._bindir = bindir
        self._psql = _find_psql(bindir) if bindir else None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._finalizer is not None and self._finalizer.alive

    def start(self) -> PostgresCluster:
        if self.running:
            return self
        reason = postgres_available()
        if reason is not None:
            raise RuntimeError(f"PostgreSQL is not available: {reason}")
        assert self._bindir is not None
        t0 = time.monotonic()
        keep = self._keep_dir is not None
        if keep:
            root = self._keep_dir
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(tempfile.mkdtemp(prefix="meterql-pg-"))
        self.dir = root
        self.datadir = root / "data"
        self.logfile = root / "server.log"
        existing = keep and (self.datadir / "PG_VERSION").exists()
        self._finalizer = weakref.finalize(
            self, _cleanup, self._bindir, self.datadir, root, self._as_postgres, keep
        )
        try:
            if len(str(root / ".s.PGSQL.65535.lock")) > 100:
                raise RuntimeError(
                    f"temp dir {root} is too long for a unix socket path; "
                    "set TMPDIR to a shorter directory"
                )
            if self._as_postgres:
                pw = pwd.getpwnam(OS_USER)
                os.chown(root, pw.pw_uid, pw.pw_gid)
            secret = root / "password"
            if existing:
                self.password = secret.read_text().strip()
            else:
                self._initdb()
                self._write_conf()
                if keep:
                    secret.write_text(self.password + "\n")
                    os.chmod(secret, 0o600)
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs _cleanup at most once
            self._finalizer = None

    def pause(self) -> None:
        """Shut the server down but keep the cluster, as a source that went away;
        :meth:`resume` starts it again on the same port."""
        if not self.running or self._bindir is None or self.datadir is None:
            raise RuntimeError("PostgreSQL cluster is not running")
        cmd = self._cmd(
            str(self._bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "-t",
            "120", "stop",
        )
        self._run_server_tool(cmd, "stop", timeout=180)

    def resume(self) -> None:
        """Start a :meth:`pause`d server again, on the port it had."""
        if not self.running or self._bindir is None:
            raise RuntimeError("PostgreSQL cluster is not running")
        cmd = self._cmd(
            str(self._bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
            "-o", f"-p {self.port}", "-w", "-t", str(self.start_timeout), "start",
        )
        self._run_server_tool(cmd, "start", timeout=self.start_timeout + 30)

    # ------------------------------------------------------------------ internals

    def _cmd(self, *args: str) -> list[str]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        return cmd

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_VARS}
        env.setdefault("LC_ALL", "C.UTF-8")
        return env

    def _run_server_tool(self, cmd: list[str], what: str, timeout: float) -> None:
        assert self.dir is not None
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(self._failure(what, cmd, f"timed out after {timeout}s")) from exc
        if proc.returncode != 0:
            raise RuntimeError(
                self._failure(what, cmd, f"exit code {proc.returncode}\n{proc.stdout}{proc.stderr}")
            )

    def _failure(self, what: str, cmd: list[str], detail: str) -> str:
        msg = f"PostgreSQL {what} failed: {detail.strip()}\ncommand: {shlex.join(cmd)}"
        if self.logfile is not None and self.logfile.exists():
            tail = self.logfile.read_text(errors="replace").splitlines()[-30:]
            msg += f"\nserver log ({self.logfile}), last lines:\n" + "\n".join(tail)
        return msg

    def _initdb(self) -> None:
        assert self.dir is not None and self._bindir is not None
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        if self._as_postgres:
            pw = pwd.getpwnam(OS_USER)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        cmd = self._cmd(
            str(self._bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        )
        try:
            self._run_server_tool(cmd, "initdb", timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_conf(self) -> None:
        assert self.datadir is not None and self.dir is not None
        settings = dict(SERVER_SETTINGS)
        settings["unix_socket_directories"] = str(self.dir)
        lines = ["", "# added by devtools/pgcluster.py"]
        for key, value in settings.items():
            lines.append(f"{key} = {_conf_quote(value)}")
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write("\n".join(lines) + "\n")

    def _pg_ctl_start(self) -> None:
        assert self._bindir is not None
        # The port is free when probed but could be taken before postgres binds it:
        # retry with a new port in that case.
        for attempt in range(3):
            self.port = free_port()
            cmd = self._cmd(
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                str(self.start_timeout),
                "start",
            )
            try:
                self._run_server_tool(cmd, "start", timeout=self.start_timeout + 30)
                return
            except RuntimeError as exc:
                if attempt < 2 and "could not bind" in str(exc):
                    continue
                raise

    # ------------------------------------------------------------------ public helpers

    def uri(
        self, dbname: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        """``postgresql://user:password@127.0.0.1:PORT/dbname`` (parts URL-quoted)."""
        if user is None:
            user = self.user
            if password is None:
                password = self.password
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def client_env(self) -> dict[str, str]:
        """The environment for a client program of this cluster (psql, pg_dump): the caller's
        PG* variables dropped, so they cannot redirect it, and PGPASSWORD set."""
        env = self._env()
        env["PGPASSWORD"] = self.password
        return env

    def psql_command(self, dbname: str, *extra: str) -> list[str]:
        """The psql command line for ``dbname`` (stop at the first error, no psqlrc), with
        ``extra`` arguments; run it with :meth:`client_env`."""
        if not self.running or self._psql is None:
            raise RuntimeError("PostgreSQL cluster is not running")
        return [
            self._psql,
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-q",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            dbname,
            *extra,
        ]

    def _psql_run(self, cmd: list[str], **kwargs) -> str:
        env = self.client_env()
        env["PGCONNECT_TIMEOUT"] = "10"
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError(
                f"psql failed (exit {proc.returncode}): {proc.stderr.strip()}\n"
                f"command: {shlex.join(cmd)}"
            )
        return proc.stdout

    def run_sql(self, sql: str, dbname: str = "postgres", *, tuples_only: bool = False) -> str:
        """Run SQL (one or more statements) through psql and return its stdout.

        With tuples_only=True psql prints bare unaligned rows (``-A -t``), handy
        for ``int(pg.run_sql("SELECT count(*) FROM t", "db", tuples_only=True))``.
        Raises RuntimeError on any SQL error.
        """
        extra = ("-A", "-t") if tuples_only else ()
        return self._psql_run(self.psql_command(dbname, *extra, "-f", "-"), input=sql)

    def create_database(self, name: str, *, exist_ok: bool = False) -> None:
        if exist_ok and self.run_sql(
            f"SELECT 1 FROM pg_database WHERE datname = {_sql_quote(name)}", tuples_only=True
        ).strip():
            return
        ident = '"' + name.replace('"', '""') + '"'
        self.run_sql(f"CREATE DATABASE {ident}")

    def copy_in(
        self,
        dbname: str,
        table: str,
        data: str | os.PathLike[str],
        *,
        header: bool = True,
        delimiter: str = ",",
        null: str = "",
    ) -> None:
        """Load CSV into ``table`` with ``COPY table FROM STDIN``.

        ``data`` is a path (``os.PathLike``, or a str naming an existing file
        and containing no newline) or else the CSV text itself. ``table`` is
        pasted into the COPY verbatim, so it may be schema-qualified or carry a
        column list, e.g. ``"billing.usage (account_id, qty)"``.
        """
        opts = (
            f"FORMAT csv, HEADER {str(header).lower()}, "
            f"DELIMITER {_sql_quote(delimiter)}, NULL {_sql_quote(null)}"
        )
        cmd = self.psql_command(dbname, "-c", f"COPY {table} FROM STDIN WITH ({opts})")
        is_path = isinstance(data, os.PathLike) or ("\n" not in data and os.path.isfile(data))
        if is_path:
            with open(data, "rb") as f:
                self._psql_run(cmd, stdin=f)
        else:
            self._psql_run(cmd, input=data)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresCluster {self.host}:{self.port} {state} dir={self.dir}>"
