"""The memory benchmark writes what the worker writes: ``bench/memory.py --verify``.

The benchmark builds its million persons from a template keyspace made in process (the real
handlers, the Lua scripts ported to Python) and written in bulk; this runs a small shop both
ways on a real Redis and compares every key.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "memory.py"


def test_bulk_path_writes_what_the_handlers_write(redis_url: str) -> None:
    prefix = f"m{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--verify",
            "--verify-persons",
            "600",  # enough for cookies that move between family members
            "--prefix",
            prefix,
            "--redis-url",
            redis_url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK" in done.stdout
    claims = [line for line in done.stdout.splitlines() if "cookie claims" in line]
    assert claims, done.stdout
    assert int(claims[0].split()[-4].replace(",", "")) > 0  # the shop has cookies that moved
