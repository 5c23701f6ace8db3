"""bestand's own worker and API as child processes, for the demo and the evaluation."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka.errors import KafkaError

from bestand.kafka.topics import consumer_lag
from bestand.settings import Settings


class ChildFailed(RuntimeError):
    """A child process exited or did not come up; the message names its log."""


@dataclass
class Child:
    """One ``python -m bestand ...`` process with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    web_port: int | None = None  # a worker's /metrics, /health and /ready

    @classmethod
    def start(cls, name: str, args: list[str], log_file: Path, env: dict[str, str]) -> Child:
        """Start ``bestand <args>`` in its own session (Ctrl-C reaches only the parent)."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "bestand", *args],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, process, log_file)

    def check(self) -> None:
        """Raise :class:`ChildFailed` when the process has exited."""
        if self.process.poll() is not None:
            raise ChildFailed(
                f"the {self.name} exited with code {self.process.returncode}; see {self.log_file}"
            )

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, and SIGKILL when it has not stopped after ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logging.getLogger(__name__).warning(
                "the %s did not stop within %.0f s; killing it", self.name, timeout
            )
            self.process.kill()
            self.process.wait()


def start_workers(settings: Settings, count: int, log_dir: Path, label: str) -> list[Child]:
    """Start ``count`` ``bestand worker`` processes of ``settings``' namespace, each on its
    own web port, logging to ``<log_dir>/<label>-worker-<n>.log``."""
    from bestand.namespace import environment
    from bestand.stack import free_port

    env = environment(settings)
    children = []
    for n in range(count):
        port = free_port()
        child = Child.start(
            f"worker {n + 1}",
            ["worker", "--loglevel", "warning"],
            log_dir / f"{label}-worker-{n + 1}.log",
            env | {"BESTAND_WORKER_WEB_PORT": str(port)},
        )
        child.web_port = port
        children.append(child)
    return children


async def wait_caught_up(
    settings: Settings,
    workers: Sequence[Child],
    total: int,
    *,
    report: Callable[[str], None] = print,
    give_up_after: float = 3600,
    stalled_after: float = 120,
) -> float:
    """Wait until the workers' group has committed every input message.

    Reports progress every few seconds; returns the seconds it took.
    """
    topics = list(settings.input_topics)
    started = time.monotonic()
    last_report = 0.0
    last_pending, last_change = -1, started
    while True:
        for worker in workers:
            worker.check()
        try:
            lag = await consumer_lag(settings, settings.app_id, topics)
        except KafkaError as exc:  # e.g. the group coordinator is still being elected
            report(f"  waiting for Kafka ({type(exc).__name__})")
            await asyncio.sleep(1)
            continue
        pending = pending_input = sum(lag[t] for t in settings.input_topics)
        elapsed = time.monotonic() - started
        if pending == 0:
            return elapsed
        if elapsed - last_report > 3:
            done = max(total - pending_input, 0)
            rate = done / elapsed if elapsed else 0
            report(
                f"  processing … {done}/{total} events read ({rate:.0f}/s), "
                f"{pending} messages pending"
            )
            last_report = elapsed
        if pending != last_pending:
            last_pending, last_change = pending, time.monotonic()
        elif time.monotonic() - last_change > stalled_after:
            logs = ", ".join(str(w.log_file) for w in workers)
            raise ChildFailed(
                f"no progress for {stalled_after:.0f} s with {pending} messages pending; see {logs}"
            )
        if elapsed > give_up_after:
            raise ChildFailed(f"the workers did not catch up in {give_up_after:.0f} s")
        await asyncio.sleep(0.5)
