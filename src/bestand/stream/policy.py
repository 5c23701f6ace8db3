"""What a failure costs: the same batch again while Redis or Kafka is away, one event for a bug.

Redis away, slow or loading (and a compare-and-set that kept losing) is retried with backoff
on the same batch, which is neither skipped nor committed meanwhile: nothing is lost, and
everything the batch wrote before is written again idempotently. Any other exception is a
bug in handling some message: the batch's messages are then handled one at a time, and a
message that fails alone costs itself (dead letter ``processing_error``), never the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bestand.ops.metrics import WorkerMetrics
from bestand.stream.messages import Incoming, Outgoing, dead_letter
from bestand.stream.processor import BatchProcessor, PreparedBatch, ResolvedBatch
from bestand.stream.retry import with_backoff

log = logging.getLogger(__name__)


class ErrorPolicy:
    """Runs the processor over a batch under the rules above."""

    def __init__(self, processor: BatchProcessor, metrics: WorkerMetrics) -> None:
        self._processor = processor
        self._metrics = metrics

    async def prepare(self, messages: Sequence[Incoming]) -> PreparedBatch | None:
        """The batch decoded and keyed, or None when that failed (a bug; see ``complete``).
        Decoded in slices that share the event loop with the batches ahead."""
        try:
            return await self._processor.prepare_sharing(messages)
        except Exception:
            log.exception("decoding a batch of %d failed", len(messages))
            return None

    async def process(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        """The messages to send for a batch; raises only when cancelled."""
        return await self.complete(messages, await self.prepare(messages))

    async def complete(
        self, messages: Sequence[Incoming], prepared: PreparedBatch | None
    ) -> list[Outgoing]:
        """The messages to send for a batch prepared before; raises only when cancelled."""
        return await self.apply(messages, await self.resolve(messages, prepared))

    async def resolve(
        self, messages: Sequence[Incoming], prepared: PreparedBatch | None
    ) -> ResolvedBatch | None:
        """The batch's identity graph half, or None after a bug (see ``apply``)."""
        if prepared is None:
            return None
        try:
            return await with_backoff(
                lambda: self._processor.resolve(prepared),
                what=f"resolving a batch of {len(messages)}",
                on_retry=self._metrics.retries.inc,
            )
        except Exception:
            log.exception("resolving a batch of %d failed", len(messages))
            return None

    async def apply(
        self, messages: Sequence[Incoming], resolved: ResolvedBatch | None
    ) -> list[Outgoing]:
        """The batch's person state half and the messages to send; after a bug in any part,
        its messages one by one. Raises only when cancelled."""
        if resolved is not None:
            try:
                return await with_backoff(
                    lambda: self._processor.apply(resolved),
                    what=f"applying a batch of {len(messages)}",
                    on_retry=self._metrics.retries.inc,
                )
            except Exception:  # a bug: find the message it is in, the others still count once
                log.exception("applying a batch of %d failed", len(messages))
        log.warning("handling a batch of %d message by message", len(messages))
        out: list[Outgoing] = []
        for message in messages:
            out += await self._alone(message)
        return out

    async def _alone(self, message: Incoming) -> list[Outgoing]:
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        try:
            return await with_backoff(
                lambda: self._processor.process([message]),
                what=where,
                on_retry=self._metrics.retries.inc,
            )
        except Exception as exc:  # a bug must cost one event, never the stream
            log.exception("handling %s failed; dead-lettered", where)
            self._metrics.events.labels(message.topic, "dead_lettered").inc()
            self._metrics.dead_letters.labels(message.topic, "processing_error").inc()
            return [dead_letter(message, "processing_error", f"{type(exc).__name__}: {exc}")]
