"""A Redis server of the local stack: Debian's redis-server binary, our own port and data.

Not the system service: the stack's instance has its data, AOF and log under the stack folder
and is started and stopped by ``bestand stack up|down`` like Kafka.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import redis

from bestand.stack.exceptions import StackError
from bestand.stack.processes import (
    LOOPBACK,
    LogFn,
    ServerProcess,
    find_project_dir,
    process_cmdline,
    start_detached,
)

__all__ = ["LocalRedis", "redis_answers"]

_INSTALL_TIMEOUT = 900.0


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    """Does a Redis server at ``url`` answer PING (a loading server does not, yet)?"""
    try:
        with redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        ) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


#: Server settings bestand's data wants (deploy/compose sets them too). Person state hashes
#: hold a JSON value of up to a few KB: with this they stay compact listpacks instead of hash
#: tables (about 4 % less memory in ``bench/memory.py``).
MEMORY_OPTIONS = ("--hash-max-listpack-value", "2048")


def module_file() -> Path | None:
    """bestand's Redis module as ``make install`` leaves it in the virtualenv
    (``<venv>/lib/bestand_redis.so``), or the file ``BESTAND_REDIS_MODULE_FILE`` names (empty:
    none); ``None`` when there is none, and Redis runs the Lua scripts."""
    named = os.environ.get("BESTAND_REDIS_MODULE_FILE")
    if named is not None:
        return Path(named) if named else None
    built = Path(sys.prefix) / "lib" / "bestand_redis.so"
    return built if built.is_file() else None


class LocalRedis(ServerProcess):
    """redis-server on 127.0.0.1 with an append-only file, no RDB snapshots.

    Layout under ``root``: ``redis/data/`` (AOF), ``redis/redis.log``, ``redis/redis.pid``.
    """

    name = "Redis"

    def __init__(
        self,
        root: Path,
        *,
        port: int = 6379,
        executable: str | None = None,
        project_dir: Path | None = None,
        log: LogFn = print,
        module: Path | Literal["find"] | None = "find",
        options: Sequence[str] = (),
    ) -> None:
        """``module``: bestand's Redis module to load (``find``: :func:`module_file`);
        ``options``: more ``redis-server`` arguments (a cluster node's)."""
        self.dir = root.absolute() / "redis"
        super().__init__(
            port=port,
            pid_file=self.dir / "redis.pid",
            log_file=self.dir / "redis.log",
            log=log,
        )
        self.data_dir = self.dir / "data"
        #: The redis-server binary: a path or a name on PATH.
        self.executable = executable or "redis-server"
        self._project_dir = project_dir
        self.module = module_file() if module == "find" else module
        self.options = tuple(options)

    @property
    def url(self) -> str:
        """redis:// URL of database 0 for clients."""
        return f"redis://{self.host}:{self.port}/0"

    def _resolved_executable(self) -> str | None:
        return shutil.which(self.executable)

    def install(self) -> None:
        """Install Debian's redis-server unless the binary is on PATH (install-redis.sh)."""
        if self._resolved_executable() is not None:
            return
        if self.executable != "redis-server":
            raise StackError(f"redis-server binary {self.executable} not found")
        project = self._project_dir or find_project_dir()
        script = project / "deploy" / "local" / "install-redis.sh"
        self._log("installing redis-server from Debian's package (first run only)…")
        try:
            done = subprocess.run(
                ["bash", str(script)],
                capture_output=True,
                text=True,
                timeout=_INSTALL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"{script} failed: {exc}") from exc
        if done.returncode != 0 or self._resolved_executable() is None:
            output = (done.stdout + done.stderr).strip()
            raise StackError(f"{script} failed (exit code {done.returncode}):\n{output}")
        self._log(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "installed")

    def is_answering(self) -> bool:
        """PING through redis-py succeeds."""
        return redis_answers(self.url)

    def running_port(self, pid: int) -> int | None:
        """The port in the process title that redis-server sets ("<binary> 127.0.0.1:<port>")."""
        cmdline = process_cmdline(pid) or ""
        # Before redis-server renames itself, its arguments still hold "--port <port>".
        match = re.search(r"--port\s+(\d+)", cmdline) or re.search(r"\s\S*:(\d+)(?:\s|$)", cmdline)
        return int(match.group(1)) if match else None

    def _is_our_process(self, cmdline: str) -> bool:
        # redis-server rewrites its command line to "<binary> 127.0.0.1:<port>".
        return Path(self.executable).name in cmdline

    def _launch(self) -> int:
        executable = self._resolved_executable()
        if executable is None:
            raise StackError(f"redis-server binary {self.executable} not found")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.data_dir),
            # Durable enough for development, cheap: fsync once a second, no RDB snapshots.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            *MEMORY_OPTIONS,
            *(["--loadmodule", str(self.module)] if self.module is not None else []),
            *self.options,
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_file),
        ]
        return start_detached(argv, log_file=self.log_file, cwd=self.dir)
