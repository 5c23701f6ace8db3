"""Which layout of bestand's keys a store holds.

A worker writes only into a store of its own release's layout, or an empty one, which it
marks. A store an earlier release wrote (no mark, or another) is made again from Kafka with
``bestand rebuild``: read in place, its persons would lack what this release keeps where.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bestand.store.errors import StoreLayoutError
from bestand.store.keys import Keys

#: The layout this release writes. 2: the graph's sets as hashes, explain entries as fields
#: split by \x1f; 3: a person's identifiers among its facts (no identifier set of its own);
#: 4: person states packed (``profile/stored.py``).
LAYOUT = 4
#: Earlier layouts this release reads as they are, and marks as its own when a worker starts
#: (layout 3's JSON states are still read): no rebuild, but a release that wrote layout 3
#: then refuses the store instead of misreading packed states.
UPGRADED = frozenset({3})
#: Keys a check scans at most for graph keys of a store without a mark (a Redis shared with
#: other data may hold many keys before the first of bestand's).
SCAN_BUDGET = 1_000_000


def _other_layout(mark: bytes | str | None) -> str | None:
    """A store's mark when it names another layout than this release's, else ``None``."""
    text = mark.decode() if isinstance(mark, bytes) else mark
    if text is None or text == str(LAYOUT) or text in {str(n) for n in UPGRADED}:
        return None
    return text


def layout_note(mark: bytes | str | None) -> str | None:
    """What ``bestand status`` says of a store's layout mark: nothing when it is this
    release's or there is none yet (a worker marks an empty store when it starts)."""
    other = _other_layout(mark)
    if other is None:
        return None
    return (
        f"the store is marked layout {other}, this release writes {LAYOUT}: run `bestand rebuild`"
    )


async def ensure_layout(client: Redis, keys: Keys, scan_budget: int = SCAN_BUDGET) -> None:
    """Mark an empty store with :data:`LAYOUT`; pass a store that has it, and mark one of an
    :data:`UPGRADED` layout as this release's; raise :class:`StoreLayoutError` for one an
    earlier release wrote in another layout."""
    mark = await client.get(keys.layout)
    if mark is not None:
        other = _other_layout(mark)
        if other is not None:
            raise StoreLayoutError(f"the store is marked layout {other}, this release's {LAYOUT}")
        if int(mark) != LAYOUT:
            await client.set(keys.layout, LAYOUT)
        return
    cursor, scanned = 0, 0
    # Erasure tombstones are the same in every layout, and `bestand rebuild` keeps them.
    unmarked = f"{keys.graph}:[^t]:*"
    while True:
        cursor, found = await client.scan(cursor, match=unmarked, count=10_000)
        if found:
            raise StoreLayoutError(
                f"the identity graph has keys but no layout mark ({keys.layout}), as releases "
                f"before layout {LAYOUT} left it"
            )
        scanned += 10_000
        if cursor == 0 or scanned >= scan_budget:
            break
    await client.set(keys.layout, LAYOUT, nx=True)
