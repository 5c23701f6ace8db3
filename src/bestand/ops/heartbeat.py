"""Worker heartbeats: liveness is a Redis key that expires, readiness a rule over lag.

Each worker writes ``<p>:hb:<worker>`` every ``BESTAND_OPS_INTERVAL_SECONDS`` with a TTL of
three intervals: a worker that hangs or dies disappears from Redis by itself, and
``bestand health worker`` (a probe) needs nothing but Redis to tell.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

import orjson

#: Intervals a heartbeat lives: one missed beat is tolerated, two are not.
TTL_INTERVALS = 3


def worker_name() -> str:
    """This process's name in heartbeats: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def ttl_seconds(interval: float) -> int:
    """How long a heartbeat written every ``interval`` seconds lives."""
    return max(1, math.ceil(TTL_INTERVALS * interval))


@dataclass(frozen=True)
class Heartbeat:
    """What a worker says about itself at each beat."""

    worker: str
    at: float
    partitions: int  # assigned to this worker
    lag: int | None  # the group's lag over every partition; None when Kafka did not answer
    ready: bool
    last_event_at: float | None = None  # Kafka timestamp (s) of the newest event handled

    def dumps(self) -> bytes:
        """The heartbeat as JSON bytes for Redis."""
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str) -> Heartbeat:
        """A heartbeat read back from Redis."""
        data: dict[str, Any] = orjson.loads(raw)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def is_ready(partitions: int, lag: int | None, max_lag: int) -> bool:
    """Ready: partitions assigned and the group caught up to within ``max_lag`` messages."""
    return partitions > 0 and lag is not None and lag <= max_lag


def verdict(beats: list[Heartbeat], *, need_ready: bool) -> tuple[bool, str]:
    """Whether the workers whose heartbeats were found pass a probe, and why (or why not)."""
    if not beats:
        return False, "no worker heartbeat in Redis (no worker alive, or it stopped beating)"
    if not need_ready:
        return True, f"{len(beats)} worker(s) alive"
    ready = [b for b in beats if b.ready]
    if not ready:
        lags = sorted({str(b.lag) for b in beats})
        return False, f"{len(beats)} worker(s) alive, none ready (group lag {', '.join(lags)})"
    return True, f"{len(ready)} of {len(beats)} worker(s) ready"
