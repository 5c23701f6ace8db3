"""How long a worker takes to move an earlier layout's keys into buckets when it first starts.

    python bench/layout_move.py [--entries 1000000] [--records 460000]

A private ``redis-server`` (no persistence) is filled with ``--entries`` graph entries and
``--records`` lookup records as layouts 3 and 4 kept them, a string key each
(``<p>:{g}:i:<kind>:<hash>`` -> person id, ``<p>:l:<kind>:<hash>`` -> a record of 60 bytes;
the simulated shop has 5.7 entries and 2.6 records a person), and marked layout 4. Then
``ensure_layout`` runs as a worker's start runs it (moving them into buckets and cutting their
identifiers to this layout's 16 characters), and the script prints the time it took,
entries moved per second, and the memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time

import redis

from bestand.store import Keys, connect
from bestand.store.layout import LAYOUT, ensure_layout
from memory import private_redis

PREFIX = "lm"


def token() -> str:
    """A random e-mail identifier as bestand keys it (kind letter, 22 characters of hash)."""
    return "e:" + base64.urlsafe_b64encode(os.urandom(16)).decode()[:22]


def fill(client: redis.Redis, keys: Keys, entries: int, records: int) -> None:
    pipe = client.pipeline(transaction=False)
    record = "P" * 12 + "\x1e" + "7" + "\x1e" + "x" * 45
    for i in range(max(entries, records)):
        t = token()
        if i < entries:
            pipe.set(keys.buckets + t, f"P{i:011d}")
        if i < records:
            pipe.set(keys.lookups + t, record)
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    client.set(keys.layout, 4)


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def move(url: str, keys: Keys) -> float:
    client = connect(url)
    try:
        started = time.perf_counter()
        await ensure_layout(client, keys)
        return time.perf_counter() - started
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=460_000)
    args = parser.parse_args()
    keys = Keys(PREFIX)
    with private_redis() as url:
        client = redis.Redis.from_url(url)
        print(f"filling {args.entries:,} graph entries and {args.records:,} lookup records ...")
        fill(client, keys, args.entries, args.records)
        before, count = used(client), client.dbsize()
        seconds = asyncio.run(move(url, keys))
        after, left = used(client), client.dbsize()
        moved = args.entries + args.records
        assert client.get(keys.layout) == str(LAYOUT).encode()
        print(f"moved {moved:,} keys into {left - 1:,} buckets in {seconds:.1f} s "
              f"({moved / seconds:,.0f} a second)")  # fmt: skip
        print(f"keys {count:,} -> {left:,}; used_memory {before / 1e6:,.1f} MB -> "
              f"{after / 1e6:,.1f} MB")  # fmt: skip
        client.close()


if __name__ == "__main__":
    main()
