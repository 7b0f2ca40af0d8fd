"""PostgreSQL and Redis from Debian's packages, run as the current project's own servers.

Used by `make test-postgres` (a throwaway cluster for one test run) and `make cluster` (a
several-process topology on one machine). Everything binds loopback on free ports; servers are
stopped by the PIDs they wrote, never by name. PostgreSQL refuses to run as root, so as root
its commands run as the `postgres` system user the Debian package creates.

    python -m ccsite.localservices with-postgres -- CMD ...   run CMD with DATABASE_URL set
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSTALL_HINT = "install it with: sudo apt-get install -y postgresql redis-server nginx"


class MissingServer(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (initdb, pg_ctl): Debian keeps them out of PATH."""
    candidates = sorted(map(str, Path("/usr/lib/postgresql").glob(f"*/bin/{name}")), key=_version_key)
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        raise MissingServer(f"PostgreSQL ({name}) is not installed; {INSTALL_HINT}")
    return found


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class Postgres:
    """A PostgreSQL cluster in ``root`` (data, socket and log), superuser ``ccsite``, trust auth
    on loopback only."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root.resolve(), port
        self.data = root / "data"

    @property
    def url(self) -> str:
        return f"postgres://ccsite@127.0.0.1:{self.port}/ccsite"

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def start(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                postgres_bin("initdb"), "-D", str(self.data), "-U", "ccsite", "--auth=trust", "-E", "UTF8"
            )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run(
            postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self._createdb()
        return self

    def _createdb(self) -> None:
        createdb = postgres_bin("createdb")
        result = subprocess.run(
            _as_postgres([createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", "ccsite", "ccsite"]),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise RuntimeError(f"createdb failed: {result.stderr.strip()}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _run(self, *argv: str) -> None:
        result = subprocess.run(_as_postgres(list(argv)), capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stderr.strip()}\n{tail}")


class Redis:
    """A redis-server on 127.0.0.1:port, no persistence, its pid and log in ``root``."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root.resolve(), port
        self.pidfile = root / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if not binary:
            raise MissingServer(f"Redis (redis-server) is not installed; {INSTALL_HINT}")
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                binary, "--bind", "127.0.0.1", "--port", str(self.port), "--daemonize", "yes",
                "--pidfile", str(self.pidfile), "--logfile", str(self.root / "redis.log"),
                "--dir", str(self.root), "--save", "", "--appendonly", "no",
            ],
            check=True,
        )  # fmt: skip
        wait_for_port(self.port, "redis-server")
        return self

    def stop(self) -> None:
        stop_pidfile(self.pidfile)


def wait_for_port(port: int, name: str, timeout: float = 20.0, *, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {host}:{port} within {timeout}s")


def stop_pidfile(pidfile: Path, timeout: float = 40.0) -> None:
    """SIGTERM the process whose PID the file holds, and wait for it to exit."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not exited(pid):
        time.sleep(0.05)
    pidfile.unlink(missing_ok=True)


def exited(pid: int) -> bool:
    """Whether the process is gone (reaping it when it is our own child)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:  # not our child: it is gone once the PID is
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def with_postgres(command: list[str]) -> int:
    """Run ``command`` with DATABASE_URL pointing at a throwaway cluster, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ccsite-pg-"))
    postgres = Postgres(root, free_port())
    try:
        postgres.start()
        print(f"PostgreSQL for this run: {postgres.url}", flush=True)
        return subprocess.call(command, env={**os.environ, "DATABASE_URL": postgres.url})
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccsite.localservices")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("with-postgres", help="run a command against a throwaway PostgreSQL")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "with-postgres":
            command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            return with_postgres(command)
    except MissingServer as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
