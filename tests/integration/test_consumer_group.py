"""bestand's consumer group is an ordinary one: Kafka's own ``kafka-consumer-groups`` tool sees
its committed offsets and lag, and they agree with what bestand reports."""

from __future__ import annotations

import os
import shutil
import subprocess

import orjson
import pytest
from aiokafka.errors import KafkaError
from support import KAFKA_LIBS, Deployment, Process, produce, run, wait_for

from bestand.kafka.lag import LagProbe

pytestmark = pytest.mark.integration

EVENTS = 40


def _number(cell: str) -> int | None:
    return None if cell == "-" else int(cell)


def _describe(
    bootstrap: str, group: str
) -> dict[tuple[str, int], tuple[int | None, int | None, int | None]]:
    """``kafka-consumer-groups --describe``: (topic, partition) -> (current, end, lag); the
    tool shows ``-`` where the group never committed."""
    java = shutil.which("java")
    assert java, "java is missing"
    assert any(KAFKA_LIBS.glob("kafka-tools-*.jar")), "run deploy/local/install-kafka.sh"
    done = subprocess.run(
        [java, "-cp", f"{KAFKA_LIBS}/*",
         "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
         "--bootstrap-server", bootstrap, "--describe", "--group", group],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "KAFKA_LOG4J_OPTS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        cells = line.split()
        if len(cells) >= 6 and cells[0] == group:
            topic, partition, current, end, lag = cells[1:6]
            rows[(topic, int(partition))] = (_number(current), _number(end), _number(lag))
    return rows


def test_standard_tools_see_the_group_like_bestand_does(
    deployment: Deployment, worker: Process
) -> None:
    settings = deployment.settings
    values = [
        orjson.dumps({"type": "page_view", "event_id": f"cg-{n}", "anonymous_id": f"cg-anon-{n}",
                      "event_time": "2026-11-20T10:00:00Z"})
        for n in range(EVENTS)
    ]  # fmt: skip
    run(produce(settings.kafka_bootstrap, deployment.topic("clickstream"), values))

    async def ours() -> dict[tuple[str, int], tuple[int | None, int]]:
        async with LagProbe(
            settings.kafka_bootstrap, settings.app_id, [settings.topic_clickstream]
        ) as probe:
            return {
                (r.topic, r.partition): (r.committed, r.end) for r in await probe.read(ages=False)
            }

    def caught_up() -> dict[tuple[str, int], tuple[int | None, int]] | None:
        try:
            rows = run(ours())
        except KafkaError:  # a new broker elects the group's coordinator first
            return None
        total = sum((c or 0) for c, _ in rows.values())
        return rows if total >= EVENTS and all(c == e for c, e in rows.values()) else None

    mine = wait_for(caught_up, timeout=90, what="the worker to commit the page views")
    theirs = _describe(settings.kafka_bootstrap, settings.app_id)
    clicks = {k: v for k, v in theirs.items() if k[0] == settings.topic_clickstream}
    assert clicks, f"kafka-consumer-groups does not list {settings.topic_clickstream}"
    for key, (current, end, lag) in clicks.items():
        committed, last = mine[key]
        # A partition that got no message has no committed offset: '-' in the tool.
        assert (current, end, lag) == (committed, last, None if committed is None else 0)
    assert sum(current or 0 for current, _, _ in clicks.values()) == EVENTS
    worker.assert_running()
