"""A throwaway PostgreSQL primary and streaming replica on 127.0.0.1, for the store tests.

initdb + pg_ctl in a temporary folder, a replica made with ``pg_basebackup --checkpoint=fast -R``;
both are stopped by their own PID at the end. Tests skip only when PostgreSQL is not installed
(``scripts/install.sh --test`` installs it with pgvector).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PORTS = range(55400, 55500)


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port(skip: set[int]) -> int:
    for port in PORTS:
        if port in skip:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server's commands as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Server:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        try:
            pid = self.pid()
        except (OSError, ValueError, IndexError):
            return
        os.kill(pid, signal.SIGINT)  # fast shutdown
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


def _start(bindir: Path, data: Path, port: int, sock: Path) -> Server:
    log = data.parent / f"{data.name}.log"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-o",
                f"-p {port} -h 127.0.0.1 -k {sock} -c fsync=off -c full_page_writes=off",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    return Server(data, port)


def start_pair() -> Iterator[tuple[Server, Server]]:
    """A primary and its streaming replica; stopped (by PID) and removed when the generator closes."""
    bindir = pg_bin()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    servers: list[Server] = []
    try:
        primary_dir, replica_dir = root / "primary", root / "replica"
        subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", str(primary_dir), "-U", "postgres", "-A", "trust"]),
            check=True,
            capture_output=True,
        )
        p_port = _free_port(set())
        servers.append(_start(bindir, primary_dir, p_port, root))
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(p_port),
                    "-U",
                    "postgres",
                    "-D",
                    str(replica_dir),
                    "--checkpoint=fast",
                    "-R",
                ]
            ),
            check=True,
            capture_output=True,
        )
        servers.append(_start(bindir, replica_dir, _free_port({p_port}), root))
        yield servers[0], servers[1]
    finally:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
