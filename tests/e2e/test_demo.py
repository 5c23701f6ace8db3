"""`bestand demo` end to end: the loyal guest with two spellings is one existing customer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bestand.stack import free_port

pytestmark = pytest.mark.integration


def test_demo_shows_the_loyal_guest_as_one_existing_customer(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "BESTAND_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "BESTAND_REDIS_URL": redis_url,
        "BESTAND_STACK_DIR": str(tmp_path),
        "BESTAND_API_PORT": str(free_port()),
        "BESTAND_WORKER_WEB_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bestand", "demo", "--no-wait", "--persons", "40"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "one person behind both spellings: yes; existing customer with 2 orders" in output
    assert "→ 200" in output
    # The stack belonged to the test session: the demo found it running and left it alone.
    assert "external" in output or "already running" in output
    assert "worker and API stopped" in output
