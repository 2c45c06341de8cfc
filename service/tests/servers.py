"""Real servers for tests and the benchmark: Redis and PostgreSQL from the Debian packages,
and uvicorn in a thread. Each runs on a free 127.0.0.1 port in its own temporary directory.

PostgreSQL refuses to run as root, so when the tests run as root its files belong to the
``postgres`` user (or ``nobody``) and its processes run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

REDIS_SERVER = os.environ.get(
    "REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class RedisServer:
    def __init__(self) -> None:
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError(f"{REDIS_SERVER} missing: apt-get install -y redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix="test-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start, or start again on the same port after ``stop``."""
        log = self.dir / "redis.log"
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_port(self.port, 10, self.process, log)

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _postgres_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    if not candidates:
        raise RuntimeError("PostgreSQL server missing: apt-get install -y postgresql")
    return Path(candidates[-1])


class PostgresServer:
    USER = "ledger"
    PASSWORD = "ledger-test-password"  # a throwaway test cluster

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="test-postgres-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            self._user = {"user": account.pw_uid, "group": account.pw_gid}
            os.chown(self.dir, account.pw_uid, account.pw_gid)
        os.chmod(self.dir, 0o700)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.PASSWORD)
        if self._user:
            os.chown(pwfile, self._user["user"], self._user["group"])
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.dir,
            **self._user,
        )
        pwfile.unlink()

    def start(self) -> None:
        """Start, or start again on the same port after ``stop``."""
        log = self.dir / "postgres.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.dir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                **self._user,
            )
        _wait_port(self.port, 30, self.process, log)
        # Listening is not accepting: wait until a query would work.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not become ready")

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)  # "fast" shutdown
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class UvicornThread:
    """An ASGI app served by uvicorn on 127.0.0.1 (random port) in a background thread."""

    def __init__(self, app: Any, **config: Any) -> None:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "log_config": None,
            "access_log": False,
            "lifespan": "on",
            "loop": "asyncio",
            "timeout_graceful_shutdown": 2,
        }
        options.update(config)
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in time")
            time.sleep(0.005)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 15) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
