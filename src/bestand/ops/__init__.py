"""Operations: metrics and health."""

from __future__ import annotations

from bestand.ops.metrics import WorkerMetrics

__all__ = ["WorkerMetrics"]
