"""`bestand demo` end to end: the loyal guest with two spellings is one existing customer,
and Ctrl-C stops what the demo started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bestand.stack import free_port
from bestand.stack.processes import port_open

pytestmark = pytest.mark.integration


def test_demo_shows_the_loyal_guest_and_stops_on_ctrl_c(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    api_port, worker_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "BESTAND_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "BESTAND_REDIS_URL": redis_url,
        "BESTAND_STACK_DIR": str(tmp_path),
        "BESTAND_API_PORT": str(api_port),
        "BESTAND_WORKER_WEB_PORT": str(worker_port),
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "bestand", "demo", "--persons", "40"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        for line in demo.stdout:
            lines.append(line)
            if "Ctrl-C stops them" in line or time.monotonic() > deadline:
                break
        output = "".join(lines)
        assert "Ctrl-C stops them" in output, output
        assert "one person behind both spellings: yes; existing customer with 2 orders" in output
        assert "→ 200" in output
        # The stack belonged to the test session: the demo found it running and left it alone.
        assert "already running" in output or "external" in output
        assert port_open(api_port)
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, output + rest
    assert "worker and API stopped" in rest
    assert not port_open(api_port)
    assert not port_open(worker_port)
