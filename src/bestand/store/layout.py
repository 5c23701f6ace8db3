"""Which layout of bestand's keys a store holds.

A worker writes only into a store of its own release's layout, or an empty one, which it
marks. A store of an :data:`UPGRADED` layout it takes over in place (moving what is kept
elsewhere now first); one an earlier release wrote otherwise (no mark, or another) is made
again from Kafka with ``bestand rebuild``: read in place, its persons would lack what this
release keeps where.
"""

from __future__ import annotations

import logging
import re

import orjson
from redis.asyncio import Redis

from bestand.identity.hashing import KEY_CHARS
from bestand.store.errors import StoreLayoutError
from bestand.store.keys import (
    ABSORBED_FIELD,
    BUCKET_CHARS,
    LOG_FIELD,
    MET_FIELD,
    REDIRECT_FIELD,
    Keys,
)
from bestand.store.scripts import Script

log = logging.getLogger(__name__)

#: The layout this release writes. 2: the graph's sets as hashes, explain entries as fields
#: split by \x1f; 3: a person's identifiers among its facts (no identifier set of its own);
#: 4: person states packed (``profile/stored.py``); 5: graph entries, lookup records, person
#: states, short explain logs, meetings, redirects and absorbed persons as fields of bucket
#: hashes (``keys.py``); 6: a person's graph facts as a field of a facts bucket; 7: keyed
#: identifiers of 16 characters (96 bits, ``identity/hashing.py``) instead of 22; 8: dedupe
#: markers under their person bucket's hash tag (``<p>:d:{<person[:3]>}:<person>:<event>``),
#: so that a cluster writes them with the person's state; 9: no sorted set of every customer's
#: value (``<p>:values``: value bands rank a sample of the states, ``store/values.py``); 10: a
#: person's short explain log, redirect and absorbed persons fields of its facts bucket, an
#: identifier's meetings a field of its graph bucket (``keys.py``: marked fields); 11: no counts
#: by kind among a person's facts (its identifiers there give them); 12: person states whose
#: currencies and channels are codes (``profile/stored.py``; the earlier form is still read,
#: and a state is written in the new one when it next changes), which releases before it
#: cannot read.
LAYOUT = 12
#: Earlier layouts this release takes over when a worker starts: it moves their graph entries,
#: lookup records, person states, meetings, redirects, absorbed persons and graph facts (a key
#: each) into buckets, cuts every identifier stored as text to 16 characters (the first 16 of
#: the 22 an earlier release kept are what this release keys the same value to), renames the
#: dedupe markers under their person bucket's hash tag (they keep their expiry), then marks
#: the store as its own (layout 3's JSON states and the packed states of 16-byte identifiers
#: are still read, and every explain log then a list is read as a long one), after deleting
#: the value set and moving logs, redirects, absorbed persons and meetings into the facts and
#: graph buckets, and taking the counts by kind out of persons' facts. No rebuild, but a
#: release that wrote layout 3 to 11 then refuses the store instead of missing what moved.
UPGRADED = frozenset({3, 4, 5, 6, 7, 8, 9, 10, 11})
#: Keys the move of an upgraded store's entries takes per script call (about).
MOVE_CHUNK = 1000
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


async def ensure_layout(
    client: Redis, keys: Keys, scan_budget: int = SCAN_BUDGET, graph: Redis | None = None
) -> None:
    """Mark an empty store with :data:`LAYOUT`; pass a store that has it, and mark one of an
    :data:`UPGRADED` layout as this release's; raise :class:`StoreLayoutError` for one an
    earlier release wrote in another layout. On a cluster, ``graph`` is a client of the
    identity graph's master (its keys are looked for there)."""
    cluster = graph is not None and graph is not client
    graph = graph or client
    mark = await client.get(keys.layout)
    if mark is not None:
        other = _other_layout(mark)
        if other is not None:
            raise StoreLayoutError(f"the store is marked layout {other}, this release's {LAYOUT}")
        if int(mark) != LAYOUT:
            if cluster and int(mark) < 8:  # no release before layout 8 wrote to a cluster
                raise StoreLayoutError(f"a cluster's store marked layout {int(mark)}")
            moved, cut, renamed = 0, 0, 0
            if int(mark) < 7:
                moved = await move_to_buckets(client, keys)
                cut = await shorten_identifiers(client, keys)
            if int(mark) < 8:
                renamed = await move_markers(client, keys)
            dropped = int(await client.delete(keys.values))
            shared = await share_buckets(graph, keys)
            uncounted = await drop_counts(graph, keys)
            log.info("store marked layout %d (was %s): %d entries moved into buckets, "
                     "identifiers cut short in %d keys, %d dedupe markers renamed, the value "
                     "set %s, %d fields moved into the facts and graph buckets, counts taken "
                     "out of %d persons' facts", LAYOUT, int(mark), moved, cut, renamed,
                     "deleted" if dropped else "absent", shared, uncounted)  # fmt: skip
            await client.set(keys.layout, LAYOUT)
        return
    cursor, scanned = 0, 0
    # Erasure tombstones are all a layout keeps through `bestand rebuild`; those of layouts 3
    # to 6 name identifiers of 22 characters, cut short below before the store is marked.
    unmarked = f"{keys.graph}:[^t]:*"
    while True:
        cursor, found = await graph.scan(cursor, match=unmarked, count=10_000)
        if found:
            raise StoreLayoutError(
                f"the identity graph has keys but no layout mark ({keys.layout}), as releases "
                f"before layout {LAYOUT} left it"
            )
        scanned += 10_000
        if cursor == 0 or scanned >= scan_budget:
            break
    cut = await shorten_identifiers(graph, keys, tombstones_only=True)
    if cut:
        log.info("erasure tombstones of an earlier layout cut short: %d", cut)
    await client.set(keys.layout, LAYOUT, nx=True)


async def move_to_buckets(client: Redis, keys: Keys) -> int:
    """Move what layouts 3 to 5 kept as a key per identifier or person into its buckets:
    graph entries, lookup records, meetings, redirects, absorbed persons, graph facts and
    person states; how many moved.
    Safe to run again after an interruption, and by workers that start together."""
    script = Script.named("to_buckets")
    g = keys.graph
    per_identifier = "?:*"  # a kind letter and ':'; a bucket's name has no ':'
    per_person = "?" * (BUCKET_CHARS + 1) + "*"  # a person id is longer than a bucket's name
    moves = [
        (keys.buckets, per_identifier, "token", ""),
        (keys.lookups, per_identifier, "token", ""),
        (f"{g}:m:", per_identifier, "token", ""),
        (f"{g}:r:", per_person, "person", ""),
        (f"{g}:a:", per_person, "person", ""),
        (f"{g}:k:", per_person, "facts", ""),
        # A person's own hash: more than a bucket's characters and the '}' in the braces.
        (keys.persons, "?" * (BUCKET_CHARS + 2) + "*", "state", "}"),
    ]
    moved, calls = 0, 0
    for prefix, pattern, named, ending in moves:
        cursor = 0
        while True:
            cursor, found = await client.scan(cursor, match=prefix + pattern, count=MOVE_CHUNK)
            if found:
                args = (prefix, BUCKET_CHARS, named, ending)
                moved += int(await client.eval(script.source, len(found), *found, *args))
                calls += 1
                if calls % 100 == 0:
                    log.info("moving an earlier layout's keys into buckets: %d so far", moved)
            if cursor == 0:
                break
    return moved


async def share_buckets(client: Redis, keys: Keys) -> int:
    """Move the buckets layouts 5 to 9 kept of short explain logs, redirects and absorbed
    persons into the facts buckets of the same names, and of meetings into the graph buckets,
    each field marked (``keys.py``); how many fields moved. Safe to run again after an
    interruption, and by workers that start together."""
    script = Script.named("share_buckets")
    g = keys.graph
    moves = [
        (f"{g}:y:", f"{g}:k:", LOG_FIELD),
        (f"{g}:r:", f"{g}:k:", REDIRECT_FIELD),
        (f"{g}:a:", f"{g}:k:", ABSORBED_FIELD),
        (f"{g}:m:", f"{g}:i:", MET_FIELD),
    ]
    moved, calls = 0, 0
    for prefix, into, mark in moves:
        cursor = 0
        while True:
            pattern = prefix + "?" * BUCKET_CHARS
            cursor, found = await client.scan(cursor, match=pattern, count=MOVE_CHUNK)
            if found:
                names = [k.decode() if isinstance(k, bytes) else k for k in found]
                pairs = [key for name in names for key in (name, into + name[len(prefix) :])]
                moved += int(await client.eval(script.source, len(pairs), *pairs, mark))
                calls += 1
                if calls % 100 == 0:
                    log.info("moving logs, redirects and meetings into shared buckets: %d so far",
                             moved)  # fmt: skip
            if cursor == 0:
                break
    return moved


async def drop_counts(client: Redis, keys: Keys) -> int:
    """Take the counts by kind letter that layouts before 11 kept out of every person's facts
    (``drop_counts.lua``); how many persons' facts changed. Safe to run again, and by workers
    that start together."""
    script = Script.named("drop_counts")
    changed, cursor = 0, 0
    while True:
        pattern = f"{keys.graph}:k:" + "?" * BUCKET_CHARS
        cursor, found = await client.scan(cursor, match=pattern, count=MOVE_CHUNK)
        if found:
            changed += int(await client.eval(script.source, len(found), *found))
        if cursor == 0:
            return changed


async def move_markers(client: Redis, keys: Keys) -> int:
    """Rename the dedupe markers layouts 3 to 7 wrote (``<p>:d:{<person>}:<event>``) to this
    layout's name (``Keys.dedupe``: under the person bucket's hash tag); how many. A marker
    keeps its expiry; one that expired meanwhile, or that a worker starting together renamed
    first, is passed. Safe to run again after an interruption."""
    head = f"{keys.prefix}:d:{{"
    old = head + "[^}]" * (BUCKET_CHARS + 1) + "*"  # a person id is longer than a bucket's tag
    renamed, cursor = 0, 0
    while True:
        cursor, found = await client.scan(cursor, match=old, count=MOVE_CHUNK)
        if found:
            async with client.pipeline(transaction=False) as pipe:
                for key in found:
                    name = key.decode() if isinstance(key, bytes) else key
                    person, _, event = name[len(head) :].partition("}:")
                    tag = person[:BUCKET_CHARS]
                    pipe.rename(name, f"{keys.prefix}:d:{{{tag}}}:{person}:{event}")
                replies = await pipe.execute(raise_on_error=False)
            renamed += sum(1 for reply in replies if not isinstance(reply, Exception))
            if renamed and renamed % 100_000 < len(found):
                log.info("renaming an earlier layout's dedupe markers: %d so far", renamed)
        if cursor == 0:
            return renamed


#: An identifier as layouts 3 to 6 keyed it: a kind letter, ':' and 22 base64url characters.
_LONG_TOKEN = re.compile(r"[a-z]:[A-Za-z0-9_-]{22}")


def _cut(token: str) -> str:
    """An identifier of an earlier layout cut to this one's width; any other text as it is."""
    return token[: 2 + KEY_CHARS] if _LONG_TOKEN.fullmatch(token) else token


def cut_receipt(body: bytes | str) -> bytes:
    """A receipt's JSON with the identifiers it names cut to this layout's width."""
    data = orjson.loads(body)
    data["identifiers"] = [_cut(token) for token in data.get("identifiers", [])]
    data["junk"] = [[_cut(token), *rest] for token, *rest in data.get("junk", [])]
    data["moved"] = [[_cut(token), *rest] for token, *rest in data.get("moved", [])]
    data["owners"] = {_cut(token): person for token, person in data.get("owners", {}).items()}
    return orjson.dumps(data)


async def shorten_identifiers(client: Redis, keys: Keys, tombstones_only: bool = False) -> int:
    """Cut the identifiers layouts 3 to 6 stored as 22 characters of text to 16, wherever they
    are (graph entries, lookup records, meetings, facts, explain logs, the keys of claims, junk
    flags and tombstones, receipts; ``tombstones_only``: what `bestand rebuild` left); how
    many keys changed. Safe to run again after an interruption, and by workers that start
    together."""
    script = Script.named("short_tokens")
    g = keys.graph
    bucket = "?" * BUCKET_CHARS
    tombstones = ("key", f"{g}:t:*", (f"{g}:t:",))
    runs: list[tuple[str, str, tuple[str, ...]]] = (
        [tombstones]
        if tombstones_only
        else [
            ("fields", f"{g}:i:{bucket}", ()),
            ("fields", f"{keys.lookups}{bucket}", ()),
            ("fields", f"{g}:m:{bucket}", ()),
            ("facts", f"{g}:k:{bucket}", ()),
            ("logs", f"{g}:y:{bucket}", ()),
            ("log", f"{g}:x:*", ()),
            *(("key", f"{g}:{kind}:*", (f"{g}:{kind}:",)) for kind in "cjt"),
        ]
    )
    changed, calls = 0, 0
    for what, pattern, extra in runs:
        cursor = 0
        while True:
            cursor, found = await client.scan(cursor, match=pattern, count=MOVE_CHUNK)
            if found:
                args: tuple[str | int, ...] = (what, KEY_CHARS, BUCKET_CHARS, *extra)
                changed += int(await client.eval(script.source, len(found), *found, *args))
                calls += 1
                if calls % 100 == 0:
                    log.info("cutting an earlier layout's identifiers short: %d keys so far",
                             changed)  # fmt: skip
            if cursor == 0:
                break
    cursor = 0
    while not tombstones_only:
        cursor, found = await client.scan(cursor, match=f"{g}:e:*", count=MOVE_CHUNK)
        if found:
            async with client.pipeline(transaction=False) as pipe:
                for key in found:
                    pipe.get(key)
                    pipe.pttl(key)
                read = await pipe.execute()
            async with client.pipeline(transaction=False) as pipe:
                for key, body, ttl in zip(found, read[::2], read[1::2], strict=True):
                    if body is None:
                        continue
                    cut = cut_receipt(body)
                    if cut != body:
                        pipe.set(key, cut, px=ttl if ttl > 0 else None)
                        changed += 1
                await pipe.execute()
        if cursor == 0:
            break
    return changed
