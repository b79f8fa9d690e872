"""A throwaway Spark Connect server (Spark in local mode) for tests and benchmarks.

pyspark's wheel carries Spark itself (its ``jars`` folder holds the Spark Connect server); the
server is that Spark's ``spark-submit`` running ``SparkConnectServer`` in the foreground, on a
free loopback port, with its logs in a fresh temporary directory that is wiped on stop. Java 17
must be on PATH (Debian: ``openjdk-17-jre-headless``). The JDBC drivers Debian installs
(``libpostgresql-jdbc-java``, ``libxerial-sqlite-jdbc-java``) are put on the server's class
path when present.

Usage::

    with SparkConnectServer(cores=2) as spark:
        spark.remote            # 'sc://127.0.0.1:PORT'
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.pgcluster import HOST, free_port

__all__ = ["SparkConnectServer", "spark_available", "JDBC_JARS"]


#: Debian's JDBC drivers (what ``.ci/run`` installs with apt).
JDBC_JARS = (Path("/usr/share/java/postgresql.jar"), Path("/usr/share/java/sqlite-jdbc.jar"))

#: Settings of a test server: small, quiet, exact (ANSI mode: overflow is an error, never a
#: wrapped number) and in UTC.
SERVER_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "1g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def spark_home() -> Path | None:
    """The Spark that pyspark's wheel carries, or ``None`` when pyspark is not installed."""
    try:
        from pyspark.find_spark_home import _find_spark_home
    except ImportError:
        return None
    return Path(_find_spark_home())


def spark_available() -> str | None:
    """``None`` when a server can be started here, else why not."""
    home = spark_home()
    if home is None:
        return "pyspark is not installed (pip install -e '.[test]')"
    if not (home / "bin" / "spark-submit").exists():
        return f"{home} has no bin/spark-submit"
    if shutil.which("java") is None:
        return "java not found on PATH (apt-get install openjdk-17-jre-headless)"
    return None


class SparkConnectServer:
    """One Spark Connect server in local mode with ``cores`` threads."""

    def __init__(self, *, cores: int = 2, start_timeout: float = 180,
                 conf: dict[str, str] | None = None) -> None:
        self.cores = cores
        self.port = free_port()
        self.start_timeout = start_timeout
        self.conf = {**SERVER_CONF, **(conf or {})}
        self.dir = Path(tempfile.mkdtemp(prefix="meterql-spark-"))
        self.log = self.dir / "server.log"
        self._proc: subprocess.Popen | None = None

    @property
    def remote(self) -> str:
        return f"sc://{HOST}:{self.port}"

    def __enter__(self) -> SparkConnectServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self) -> list[str]:
        home = spark_home()
        if home is None:
            raise RuntimeError(spark_available() or "pyspark is not installed")
        conf = {**self.conf, "spark.connect.grpc.binding.address": HOST,
                "spark.connect.grpc.binding.port": str(self.port),
                "spark.local.dir": str(self.dir / "tmp")}
        jars = [str(j) for j in JDBC_JARS if j.exists()]
        cmd = [str(home / "bin" / "spark-submit"), "--master", f"local[{self.cores}]",
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
               "--name", "meterql-test"]
        if jars:
            cmd += ["--jars", ",".join(jars)]
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        return cmd + ["spark-internal"]

    def start(self) -> SparkConnectServer:
        reason = spark_available()
        if reason is not None:
            raise RuntimeError(reason)
        env = {**os.environ, "SPARK_LOCAL_IP": HOST, "SPARK_HOME": str(spark_home())}
        env.pop("SPARK_REMOTE", None)
        (self.dir / "tmp").mkdir()
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env, cwd=self.dir,
                                          start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"the Spark Connect server exited ({self._proc.returncode}):"
                                   f"\n{tail}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"the Spark Connect server did not listen on {self.remote} within "
                           f"{self.start_timeout:.0f} s:\n{tail}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)  # (a throwaway: its shutdown hooks may hang on
                #  open client sessions, and nothing it holds needs to be kept)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
