"""The partition of a key is the one aiokafka's default partitioner (Kafka's murmur2) picks."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from bestand.kafka.batches import KeyPartitions


@given(
    keys=st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=30),
    count=st.integers(min_value=1, max_value=64),
)
def test_a_keys_partition_is_the_default_partitioners(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    chosen = KeyPartitions(remembered=7)  # small: remembering starts afresh within the test
    for _ in range(2):
        for key in keys:
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert chosen.partition("t", key, partitions) == expected


def test_a_topic_with_more_partitions_is_asked_afresh() -> None:
    chosen = KeyPartitions()
    key = b"P0001"
    assert chosen.partition("t", key, [0, 1]) == DefaultPartitioner()(key, [0, 1], [0, 1])
    wider = list(range(12))
    assert chosen.partition("t", key, wider) == DefaultPartitioner()(key, wider, wider)


def test_a_message_without_key_goes_to_any_partition() -> None:
    chosen = KeyPartitions()
    seen = {chosen.partition("t", None, [0, 1, 2]) for _ in range(200)}
    assert seen == {0, 1, 2}
