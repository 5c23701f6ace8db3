"""A store whose identifiers an earlier release keyed to 22 characters is cut short in place.

Layouts 3 to 6 kept 16 bytes of an identifier's HMAC (22 characters); this layout keeps 12
(16 characters), the same text cut short. The test writes a shop with this release, lengthens
every identifier it stored as text (as if keyed by an earlier release: 6 characters more), marks
the store layout 6 and lets a worker of this release start on it: every key and value must be
the shop's again, byte for byte, expiry included.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from support import run

from bestand.identity.hashing import KEY_CHARS
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import Keys, connect
from bestand.store.keys import BUCKET_CHARS, FACT_VALUE, FACTS_SEP
from bestand.store.layout import LAYOUT, ensure_layout
from stages import clear, raw_messages, redis_state, unshare_buckets, worker_pass

EVENTS: list[dict[str, Any]] = list(simulate(persons=150, seed=31).events)
#: What lengthens an identifier of this layout into one of the shape earlier layouts keyed.
MORE = "Zx9-_Q"
_TOKEN = re.compile(rf"[a-z]:[A-Za-z0-9_-]{{{KEY_CHARS}}}")


def _long(text: str) -> str:
    """An identifier made as long as an earlier layout's; any other text as it is."""
    return text + MORE if _TOKEN.fullmatch(text) else text


def _long_name(name: str) -> str:
    return "@" + _long(name[1:]) if name.startswith("@") else _long(name)


def _long_entry(entry: str) -> str:
    if entry.startswith("{"):
        return entry
    fields = entry.split("\x1f")
    return "\x1f".join(_long(f) if i >= 4 and i != 5 else f for i, f in enumerate(fields))


async def _as_layout_6(settings: Settings) -> None:
    """Every identifier stored as text lengthened, the store marked layout 6 (whose short logs,
    meetings, redirects and absorbed persons had buckets of their own)."""
    await unshare_buckets(settings)
    client = connect(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    g = keys.graph
    short_field = 2 + KEY_CHARS - BUCKET_CHARS
    try:
        for prefix in (f"{g}:i:", keys.lookups, f"{g}:m:"):
            async for key in client.scan_iter(match=prefix + "?" * BUCKET_CHARS):
                for field, value in (await client.hgetall(key)).items():
                    if len(field) == short_field:
                        await client.hdel(key, field)
                        await client.hset(key, field + MORE.encode(), value)
        async for key in client.scan_iter(match=f"{g}:k:" + "?" * BUCKET_CHARS):
            for person, facts in (await client.hgetall(key)).items():
                entries = [e.partition(FACT_VALUE) for e in facts.decode().split(FACTS_SEP)]
                longer = FACTS_SEP.join(_long_name(n) + s + v for n, s, v in entries)
                await client.hset(key, person, longer)
        async for key in client.scan_iter(match=f"{g}:y:" + "?" * BUCKET_CHARS):
            for person, text in (await client.hgetall(key)).items():
                longer = "\x1e".join(_long_entry(e) for e in text.decode().split("\x1e"))
                await client.hset(key, person, longer)
        async for key in client.scan_iter(match=f"{g}:x:*"):
            entries = [_long_entry(e.decode()) for e in await client.lrange(key, 0, -1)]
            await client.delete(key)
            await client.rpush(key, *entries)
        for kind in "cjt":
            prefix = f"{g}:{kind}:"
            for key in [k.decode() async for k in client.scan_iter(match=prefix + "*")]:
                await client.rename(key, prefix + _long(key.removeprefix(prefix)))
        async for key in client.scan_iter(match=f"{g}:e:*"):
            data = orjson.loads(await client.get(key))
            data["identifiers"] = [_long(t) for t in data["identifiers"]]
            data["junk"] = [[_long(t), *rest] for t, *rest in data["junk"]]
            data["moved"] = [[_long(t), *rest] for t, *rest in data["moved"]]
            data["owners"] = {_long(t): p for t, p in data["owners"].items()}
            await client.set(key, orjson.dumps(data), keepttl=True)
        await client.set(keys.layout, 6)
    finally:
        await client.aclose()


def test_a_layout_6_store_has_its_identifiers_cut_short_in_place(redis_url: str) -> None:
    settings = Settings(_env_file=None, redis_url=redis_url, redis_prefix="short-ids")
    keys = Keys(settings.redis_prefix)
    run(clear(settings))

    async def extras() -> None:
        """What the shop may lack: a long explain log (a list) and an erasure tombstone."""
        client = connect(redis_url)
        try:
            g = keys.graph
            logs = []  # a person's short log: a field of its facts bucket, marked
            async for bucket in client.scan_iter(match=f"{g}:k:" + "?" * BUCKET_CHARS):
                held = await client.hgetall(bucket)
                logs += [(bucket, f, v) for f, v in held.items() if f.startswith(b"y:")]
            bucket, field, text = logs[0]
            await client.hdel(bucket, field)
            await client.rpush(keys.merge_log(field[2:].decode()), *text.split(b"\x1e"))
            graph = await anext(client.scan_iter(match=f"{g}:i:" + "?" * BUCKET_CHARS))
            field = next(iter(await client.hkeys(graph)))
            token = field[:2].decode() + graph.decode()[-BUCKET_CHARS:] + field[2:].decode()
            await client.set(keys.tombstone(token), 1_700_000_000)
        finally:
            await client.aclose()

    async def upgrade() -> None:
        client = connect(redis_url)
        try:
            await ensure_layout(client, keys)
        finally:
            await client.aclose()

    try:
        messages = raw_messages(settings, EVENTS)
        run(worker_pass(settings, messages, 64))
        run(extras())
        before = run(redis_state(settings, exact=True))
        run(_as_layout_6(settings))
        lengthened = run(redis_state(settings, exact=True))
        run(upgrade())
        after = run(redis_state(settings, exact=True))
        # The events delivered again find everything where the shop left it.
        run(worker_pass(settings, messages, 64))
        again = run(redis_state(settings, exact=True))
    finally:
        run(clear(settings))

    kinds = {name.split(":")[2] for name in before if name.startswith(":{g}:")}
    assert {"i", "k", "m", "y", "x", "c", "j", "t", "e"} <= kinds  # every kind that holds them
    assert lengthened != before  # the test's earlier layout differs where it should
    assert sum(MORE in str(value) or MORE in name for name, value in lengthened.items()) > 100
    assert after.pop(":layout") == (str(LAYOUT).encode(), False)  # marked as this release's
    assert ":layout" not in before  # the stages write no mark; the test's earlier layout did
    assert after == before
    again.pop(":layout")
    # Redelivered events change only what a redelivery may: versions, explain entries decided
    # again, and the expiry of a stop flag; no identifier of the long shape comes back.
    assert not any(MORE in str(value) or MORE in name for name, value in again.items())
    assert {name for name in again if not name.startswith(":{g}:f:")} == {
        name for name in before if not name.startswith(":{g}:f:")
    }


def test_tombstones_a_rebuild_kept_are_cut_short_when_a_worker_marks_the_store(
    redis_url: str,
) -> None:
    """`bestand rebuild` of a layout-6 store leaves its erasure tombstones and no mark: the
    first worker cuts them short, so that an erased identifier still stops a replay."""
    keys = Keys("short-tomb")
    token = "e:" + "AbCdEfGhIjKlMnOp"  # as this release keys it
    earlier = keys.tombstone(token + MORE)

    async def go() -> tuple[bytes | None, bytes | None, int]:
        client = connect(redis_url)
        try:
            await client.set(earlier, 1_790_000_000)
            await ensure_layout(client, keys)
            return (
                await client.get(keys.tombstone(token)),
                await client.get(keys.layout),
                int(await client.exists(earlier)),
            )
        finally:
            await client.delete(keys.tombstone(token), earlier, keys.layout)
            await client.aclose()

    now, mark, left = run(go())
    assert now == b"1790000000"
    assert mark == str(LAYOUT).encode()
    assert left == 0
