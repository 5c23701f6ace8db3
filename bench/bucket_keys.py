"""Graph entries as a key each or as fields of bucket hashes: bytes and a script's time.

    python bench/bucket_keys.py [--identifiers 3000000] [--bucket-chars 3] [--rounds 3]
                                [--person-chars 12]

A private ``redis-server`` (no persistence) is filled with ``--identifiers`` graph entries in
bestand's shape (``<p>:{g}:i:<kind>:<hash>`` -> a person id of ``--person-chars`` characters,
12 as bestand mints them, 16 as earlier releases did), first as a string key each, then as
fields of hashes named by the kind and the first ``--bucket-chars`` characters of the hash,
the rest of the hash the field (64 ** 3 = 262,144 buckets: about a dozen entries each at 3
million, small listpacks).
For each it prints the memory per entry and the Redis time per look-up of a script that reads
1,000 random entries a call (``GET`` each, one ``MGET``, or ``HGET`` in its bucket), from
``INFO commandstats``; the strings are deleted before the buckets are timed, so each is timed
with only its own keys in Redis. The question it answers: do buckets, which save memory, cost
the scripts (Redis's single thread is what bounds the ingest)?
"""

from __future__ import annotations

import argparse
import base64
import os
import random

import redis

from memory import private_redis

PREFIX = "bk:{g}:"


def tokens(n: int) -> list[str]:
    """``n`` random e-mail tokens as bestand keys them (kind letter, 22 characters of hash)."""
    return ["e:" + base64.urlsafe_b64encode(os.urandom(12)).decode() for _ in range(n)]


def fill(
    client: redis.Redis, items: list[str], bucket_chars: int, bucketed: bool, person_chars: int
) -> None:
    pipe = client.pipeline(transaction=False)
    for i, token in enumerate(items):
        person = f"P{i:0{person_chars - 1}d}"
        if bucketed:
            split = 2 + bucket_chars
            pipe.hset(f"{PREFIX}I:{token[:split]}", token[split:], person)
        else:
            pipe.set(f"{PREFIX}i:{token}", person)
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def timed(client: redis.Redis, script: str, items: list[str], calls: int) -> float:
    """µs of Redis time per look-up of ``script`` over ``calls`` calls of 1,000 look-ups."""
    run = client.register_script(script)
    client.config_resetstat()
    for _ in range(calls):
        run(args=random.sample(items, 1000))
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec", 0)) / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identifiers", type=int, default=3_000_000)
    parser.add_argument("--bucket-chars", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200, help="script calls per timing")
    parser.add_argument("--person-chars", type=int, default=12, help="length of a person id")
    args = parser.parse_args()
    get = f"for i=1,#ARGV do redis.call('GET','{PREFIX}i:'..ARGV[i]) end return 0"
    mget = (
        f"local k={{}} for i=1,#ARGV do k[i]='{PREFIX}i:'..ARGV[i] end "
        "redis.call('MGET',unpack(k)) return 0"
    )
    end = 2 + args.bucket_chars
    hget = (
        "for i=1,#ARGV do local t=ARGV[i] "
        f"redis.call('HGET','{PREFIX}I:'..string.sub(t,1,{end}),string.sub(t,{end + 1})) end "
        "return 0"
    )
    items = tokens(args.identifiers)
    with private_redis() as url:
        client = redis.Redis.from_url(url)
        base = used(client)
        fill(client, items, args.bucket_chars, bucketed=False, person_chars=args.person_chars)
        strings = (used(client) - base) / len(items)
        rows = [("GET, a key each", get), ("MGET, a key each", mget)]
        times = {name: [timed(client, s, items, args.calls) for _ in range(args.rounds)]
                 for name, s in rows}  # fmt: skip
        client.flushall()
        base = used(client)
        fill(client, items, args.bucket_chars, bucketed=True, person_chars=args.person_chars)
        buckets = (used(client) - base) / len(items)
        encoding = client.object("encoding", f"{PREFIX}I:{items[0][:end]}")
        times["HGET in a bucket"] = [timed(client, hget, items, args.calls)
                                     for _ in range(args.rounds)]  # fmt: skip
        client.close()
    print(
        f"{args.identifiers:,} graph entries, person ids of {args.person_chars} characters; "
        f"buckets of the first {args.bucket_chars} characters of the hash "
        f"({64**args.bucket_chars:,}), encoded {encoding!r}"
    )
    print(f"bytes per entry: a key each {strings:.0f}, in buckets {buckets:.0f}")
    print("| look-up | " + " | ".join(f"round {r + 1}" for r in range(args.rounds)) + " |")
    print("|---|" + "--:|" * args.rounds)
    for name, values in times.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    print("(µs of Redis time per look-up, from a script reading 1,000 a call)")


if __name__ == "__main__":
    main()
