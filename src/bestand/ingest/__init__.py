"""Ways into bestand's input topics: the producer for files, backfills and the demo."""

from __future__ import annotations

from bestand.ingest.producer import EventProducer, ProduceReport, UnroutableEvent, topic_for

__all__ = ["EventProducer", "ProduceReport", "UnroutableEvent", "topic_for"]
