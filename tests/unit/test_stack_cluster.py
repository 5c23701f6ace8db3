"""How the local Redis Cluster splits the hash slots."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bestand.stack import StackError
from bestand.stack.cluster import SLOTS, LocalRedisCluster, free_cluster_ports, slot_ranges


@pytest.mark.parametrize("masters", [1, 2, 3, 5, 7, 16384])
def test_the_slots_are_split_evenly_without_gap_or_overlap(masters: int) -> None:
    ranges = slot_ranges(masters)
    assert len(ranges) == masters
    assert ranges[0][0] == 0
    assert ranges[-1][1] == SLOTS - 1
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert first == last + 1
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("masters", [0, -1, SLOTS + 1])
def test_a_cluster_needs_one_to_16384_masters(masters: int) -> None:
    with pytest.raises(StackError, match="masters"):
        slot_ranges(masters)


def test_a_node_port_leaves_room_for_its_bus_port(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="55535 or lower"):
        LocalRedisCluster(tmp_path, ports=[7001, 57273], log=lambda _: None)
    for port in free_cluster_ports(3):
        assert 20000 <= port <= 55535
