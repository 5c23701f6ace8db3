"""The local development stack: Kafka (KRaft) and Redis as background processes, no Docker.

``bestand stack up|down|status`` and the test suite use :class:`LocalStack`; everything lives
under one git-ignored folder (``BESTAND_STACK_DIR``, default ``.local``).
"""

from __future__ import annotations

from bestand.stack.exceptions import StackError
from bestand.stack.kafka import LocalKafka, kafka_answers, new_cluster_id
from bestand.stack.local import LocalStack, kafka_port_from_bootstrap, redis_port_from_url
from bestand.stack.processes import ComponentStatus, find_project_dir, free_port, free_ports
from bestand.stack.redis import LocalRedis, redis_answers

__all__ = [
    "ComponentStatus",
    "LocalKafka",
    "LocalRedis",
    "LocalStack",
    "StackError",
    "find_project_dir",
    "free_port",
    "free_ports",
    "kafka_answers",
    "kafka_port_from_bootstrap",
    "new_cluster_id",
    "redis_answers",
    "redis_port_from_url",
]
