"""The erasure suite (``test_erasure.py``) with the worker on a local Redis Cluster of three
masters: every trace of the person goes, on every master."""

from __future__ import annotations

import pytest
from support import Deployment
from test_erasure import (  # noqa: F401 - collected here, run against the cluster
    test_erasure_leaves_only_tombstones_and_a_replay_does_not_undo_it,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(cluster_deployment: Deployment) -> Deployment:
    return cluster_deployment
