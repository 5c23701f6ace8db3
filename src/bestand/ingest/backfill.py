"""``bestand backfill orders FILE``: a shop's order history into the input topics, so existing
customers are known on day one.

Reads a CSV export (Shopify's columns out of the box, another layout through ``--mapping``)
or JSON lines (bestand's own events, or one flat order record a line in the mapping's
columns), sends every order's events with an idempotent ``acks=all`` producer, and shows its
progress (orders, rate, share of the file, time left). Every ``CHECKPOINT_ORDERS`` orders go
as record batches; once Kafka acknowledged them, the line they reach is written into
``FILE.backfill`` (a refusal stops the run before that): run
again after Ctrl-C or a crash, it goes on from there (``--restart`` starts over). A row that
makes no event is reported with its line number and counted; the run goes on.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from bestand.ingest.orders import Layout, Malformed, Order, group_rows, invalid, order_events
from bestand.ingest.producer import EventProducer, key_for, topic_for
from bestand.settings import Settings

#: Orders sent together as record batches; once Kafka acknowledged them, the checkpoint moves.
CHECKPOINT_ORDERS = 5_000
#: Malformed rows shown one by one; the rest are counted.
SHOWN_MALFORMED = 20


@dataclass
class BackfillReport:
    """What a backfill run did."""

    orders: int = 0
    events: int = 0
    malformed: int = 0
    resumed_after_line: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def state_path(path: Path) -> Path:
    """Where a backfill of ``path`` keeps how far it got."""
    return path.with_name(path.name + ".backfill")


def _read_state(path: Path) -> int:
    """The last line whose orders Kafka acknowledged, 0 when the file changed since."""
    state = state_path(path)
    if not state.exists():
        return 0
    saved = orjson.loads(state.read_bytes())
    stat = path.stat()
    if saved.get("size") != stat.st_size or saved.get("mtime_ns") != stat.st_mtime_ns:
        return 0  # another file under the same name: start over
    return int(saved.get("line", 0))


def _write_state(path: Path, line: int) -> None:
    stat = path.stat()
    record = {"line": line, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    tmp = state_path(path).with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(record))
    os.replace(tmp, state_path(path))


class _Counting:
    """The lines of a text file, counting the bytes read for the progress line."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self.read_bytes = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._handle:
            self.read_bytes += len(text)  # characters: near enough for a share of the file
            yield text


def read_orders(
    handle: Iterator[str] | TextIO, layout: Layout, fmt: str
) -> Iterator[Order | Malformed]:
    """Every order of an export, in file order, or why a row makes none."""
    if fmt == "jsonl":
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                yield Malformed(number, f"not JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield Malformed(number, "a line must be a JSON object")
            elif "type" in record:
                why = invalid(record)
                yield Order([record], number) if why is None else Malformed(number, why)
            else:
                flat = {k: "" if v is None else str(v) for k, v in record.items()}
                yield order_events([flat], layout, number)
        return
    reader = csv.DictReader(handle)
    rows = ((reader.line_num, row) for row in reader)
    key = layout.columns.get("order_name") or layout.columns["order_id"]
    if key not in (reader.fieldnames or []):
        key = layout.columns["order_id"]
    for last, group in group_rows(rows, key):
        yield order_events(group, layout, last)


async def backfill(
    settings: Settings,
    path: Path,
    *,
    layout: Layout | None = None,
    fmt: str | None = None,
    restart: bool = False,
    max_orders: int | None = None,
    progress: Callable[[BackfillReport, float], None] | None = None,
) -> BackfillReport:
    """Send the orders of ``path`` from where the last run stopped; see the module text."""
    layout = layout or Layout()
    fmt = fmt or ("jsonl" if path.suffix in (".jsonl", ".ndjson", ".json") else "csv")
    report = BackfillReport()
    done_upto = 0 if restart else _read_state(path)
    report.resumed_after_line = done_upto
    size = path.stat().st_size or 1  # noqa: ASYNC240 - one stat before the run
    started = time.perf_counter()
    last_shown = 0.0
    async with EventProducer(settings) as producer:
        with path.open(encoding="utf-8-sig", newline="") as raw:
            counting = _Counting(raw)
            since_checkpoint, line = 0, done_upto
            messages: list[tuple[str, bytes | None, bytes]] = []
            for item in read_orders(iter(counting), layout, fmt):
                if isinstance(item, Malformed):
                    if item.line > done_upto:
                        report.malformed += 1
                        if len(report.examples) < SHOWN_MALFORMED:
                            report.examples.append(f"line {item.line}: {item.reason}")
                    continue
                if item.last_line <= done_upto:
                    continue  # sent and acknowledged by an earlier run
                messages += [
                    (topic_for(event, settings), key_for(event), orjson.dumps(event))
                    for event in item.events
                ]
                report.orders += 1
                report.events += len(item.events)
                line = item.last_line
                since_checkpoint += 1
                if since_checkpoint >= CHECKPOINT_ORDERS:
                    await producer.send_acknowledged(messages)
                    messages.clear()
                    _write_state(path, line)
                    since_checkpoint = 0
                now = time.perf_counter()
                if progress is not None and now - last_shown >= 0.5:
                    report.seconds = now - started
                    progress(report, counting.read_bytes / size)
                    last_shown = now
                if max_orders is not None and report.orders >= max_orders:
                    break
            await producer.send_acknowledged(messages)
            _write_state(path, line)
    report.seconds = time.perf_counter() - started
    return report


def show_progress(report: BackfillReport, share: float) -> None:
    """One progress line on stderr: orders, rate, share of the file, time left."""
    left = report.seconds * (1 - share) / share if share > 0 else 0.0
    sys.stderr.write(
        f"\rbackfill: {report.orders:,} orders ({report.orders_per_second:,.0f}/s), "
        f"{100 * share:.0f} % of the file, {left:.0f} s left, {report.malformed} malformed   "
    )
    sys.stderr.flush()


def load_layout(mapping: Path | None) -> Layout:
    """The layout of a mapping file, Shopify's export without one."""
    if mapping is None:
        return Layout()
    document: Mapping[str, Any] = orjson.loads(mapping.read_bytes())
    return Layout.from_mapping(document)
