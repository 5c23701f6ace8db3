"""Redis memory per person and per identifier, at a million persons, in bestand's real formats.

    python bench/memory.py [--persons 1000000] [--json FILE] [--markdown FILE]
    python bench/memory.py --verify            # the bulk path against the real handlers
    python bench/memory.py --experiment all    # cheap memory wins, each measured

How the data is made:

1. A *template shop* (``--template-persons``, default 2,000 people) comes from the labelled
   simulator (``bestand.simulate``): browsers with only cookies, new customers, registered
   customers with 2–8 orders, loyal guests with several e-mail spellings, walk-ins, households.
   Its events go through the worker's own code, its batch processor (validation,
   normalization, HMAC keying, identity rules, reducer, lookup summaries), in event-time
   order, against an in-process stand-in for Redis whose scripts are Python ports of
   ``src/bestand/store/scripts/*.lua``. What is left is the keyspace a worker leaves.
2. The keyspace becomes write commands (``SET``/``HSET``/``SADD``/``RPUSH``/``ZADD``), in the
   encodings the worker's history gives them (a hash that once held a long value stays a
   hashtable after the value went).
3. The population is the template cloned ``persons / template-persons`` times: every person id
   and every identifier hash is replaced by a fresh random one of the same length (another
   shop's people with the same kinds of history), and the commands are streamed to Redis over
   one pipelined connection. Graph entries, lookup records and an identifier's meetings are
   fields of buckets named by the first three characters of the identifier's hash
   (``<p>:{g}:i:<hash[:3]>``, ``<p>:l:<hash[:3]>`` and ``<p>:{g}:m:<hash[:3]>``, the field
   ``<kind>:<hash[3:]>``, ``store/keys.py``; the meetings: the persons met joined by ``,``).
   A person's graph facts (its version, counts, identifiers, describing tokens and claims,
   ``keys.packed_facts``), its state (``v<version>:<state>``, or ``r<survivor>`` once merged
   away), its redirect (whom it went into when merged away), the persons it absorbed (joined
   by ``,``) and its explain log while that is at most ``LOG_INLINE`` bytes (its entries
   split by ``\\x1e``) are the person's fields of buckets named by its id's first three
   characters (``<p>:{g}:k:<person[:3]>``, ``<p>:p:{<person[:3]>}``, a hash tag;
   ``<p>:{g}:r:<person[:3]>``, ``<p>:{g}:a:<person[:3]>``, ``<p>:{g}:y:<person[:3]>``). A
   bucket is no clone's own key: a clone writes each entry (``HSET``) into the bucket its
   fresh hash or person id names, among the other clones' entries; the person ids and
   identifier hashes a value names are the clone's too (a lookup record's person id, its
   first field; the persons met, absorbed or gone into; the identifiers and describing tokens
   a person's facts name; what an explain log's entries name; the ids a packed state holds
   as text, its absorbed persons, say; not its identifiers, 12 raw bytes each, which every
   clone keeps as the template has them, as when a state was a hash of its own).
   A longer explain log is a list of its own (``<p>:{g}:x:<person>``), a clone's key like the
   rest.

``--verify`` checks steps 1–3 on real Redis for a small shop: the real handlers with the real
Lua scripts write one keyspace, the bulk path writes another for the same events, and every
key must agree in type, value, encoding and TTL, and ``MEMORY USAGE`` in total (within
0.5 %: a set whose hash table grew lately keeps its old table until enough later commands
have rehashed it, and how many that takes depends on Redis's random hash seed). Strings a Lua
script SET one allocation size class (16 B) larger than the same string SET plainly are
counted apart, outside that tolerance: Redis 7.0 reuses the argument objects of
``redis.call``, and a SET whose value fits a kept, longer one (an explain log written before)
stores it. In the small shop most dedupe markers get one (433 of 546, some 25 B each): a
couple of bytes per person at the default dedupe window that the bulk path, and so the
figures below, leave out (the fields of buckets, redirects among them, keep no argument
object: a listpack holds copies of the bytes, and so does a bucket turned hash table). Then
a clone must equal its template except for the renamed ids; the fields of its buckets are
compared as entries, since they share buckets other than the template's.

Dedupe markers (``<p>:d:{<person[:3]>}:<person>:<event>``) live
``BESTAND_DEDUPE_TTL_SECONDS``. By default
the load keeps those a live worker would still hold at the end of the simulated history
(events of the last TTL, each with its remaining TTL); ``--dedupe all`` keeps every event's
marker, as right after a backfill of the whole history.

Figures come from Redis: ``MEMORY USAGE <key> SAMPLES 0`` on every key of a sample of clones
(``--measure-clones``) and on every bucket (graph entries, lookup records, meetings, graph
facts, person states, explain logs, redirects, absorbed persons: at most 64 ** 3 = 262,144 of
each kind, all clones'), and ``INFO memory`` before and after the load (after a rehash of the
keyspace's table that the load left under way is finished: ``finish_rehash``). A bucket's
bytes count for its entries by their bytes (field and value), each entry for the live
person it belongs to in the least-squares fit (an identifier's owner, or the person itself;
a redirect, or a merged-away person's state: whom the person went into). Keys are written
under their own prefix (default ``M``, as short as production's ``b``: the prefix is part
of every key) and deleted afterwards, the buckets too; the script refuses a prefix that
already has keys.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import orjson
import redis
import redis.asyncio as aioredis

from bestand.identity.entries import LOG_SEP, parse_entry
from bestand.ingest.producer import topic_for
from bestand.kafka.explain_topic import topic_key
from bestand.ops.metrics import WorkerMetrics
from bestand.profile.state import dump_state, load_state
from bestand.profile.summary import RECORD_SEP, LookupSummary
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import Scripts
from bestand.store.explain_log import Links
from bestand.store.keys import (
    ABSORBED_FIELD,
    BUCKET_CHARS,
    FACT_VALUE,
    FACTS_SEP,
    LOG_FIELD,
    LOG_INLINE,
    MET_FIELD,
    REDIRECT_FIELD,
    Keys,
    bucket_field,
    person_value,
    receipt_suffix,
    token_of,
)
from bestand.store.values import sample_values, thresholds_of
from bestand.stream.messages import Incoming
from bestand.stream.worker import processor_for
from resp import script_call

#: When the simulated history ends (fixed, so that a seed gives the same shop every run).
SIM_NOW = datetime(2026, 11, 1, tzinfo=UTC)
#: SHA-1 of the Lua scripts the Python ports below mirror; run ``--verify`` when one differs.
PORTED_SCRIPTS: dict[str, frozenset[str]] = {
    "graph_read": frozenset({"b14e22e1b1523da17e987e2711b56098c9d4fac1"}),
    "graph_apply": frozenset({"bf69e4c10896d8140b52aa3c3df979a1bef643de"}),
    "erase": frozenset({"0dd7a257f9cf1246d0467d452467480e927b7914"}),
    "persons_read": frozenset({"1466412f3796b9a08965641654fb5f5d0480a229"}),
    "persons_write": frozenset({"05a53f03cebbb4f39ffc60429ee73f8b51068d33"}),
}

Value = bytes | dict[bytes, bytes] | set[bytes] | list[bytes]
#: What splits the entries of a short explain log (``identity/entries.py``).
_LOG_SEP = LOG_SEP.encode()
#: What joins a person's facts, and a fact's name to its value (``keys.packed_facts``).
_FACTS_SEP, _FACT_VALUE = FACTS_SEP.encode(), FACT_VALUE.encode()


def _b(value: object) -> bytes:
    """An argument as redis-py sends it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):  # pragma: no cover - redis-py refuses booleans too
        raise TypeError("booleans are not Redis values")
    if isinstance(value, int | float):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


# --------------------------------------------------------------------------------------------
# An in-process Redis with the worker's scripts ported to Python
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Encoding thresholds of the target server (``CONFIG GET``)."""

    hash_entries: int = 512
    hash_value: int = 64
    zset_entries: int = 128
    zset_value: int = 64
    set_entries: int | None = None  # listpack sets: Redis 7.2 and later
    set_value: int | None = None

    @classmethod
    def of(cls, client: redis.Redis) -> Limits:
        """The thresholds a server runs with."""
        raw = cast(dict[str, str], client.config_get("*-max-listpack-*"))

        def get(name: str) -> int | None:
            value = raw.get(name)
            return None if value is None else int(value)

        return cls(
            hash_entries=get("hash-max-listpack-entries") or 512,
            hash_value=get("hash-max-listpack-value") or 64,
            zset_entries=get("zset-max-listpack-entries") or 128,
            zset_value=get("zset-max-listpack-value") or 64,
            set_entries=get("set-max-listpack-entries"),
            set_value=get("set-max-listpack-value"),
        )


class MemoryRedis:
    """The commands the worker sends, on Python containers, with encoding history.

    Redis converts a small hash (listpack) to a hashtable when a field or value grows past
    ``hash-max-listpack-value`` and never converts it back; ``longest`` and ``most`` (hashes)
    and ``wide`` (sets, sorted sets) remember that, so the bulk path can give a key the
    encoding its history gave it.
    """

    def __init__(self, limits: Limits) -> None:
        self.data: dict[bytes, Value] = {}
        self.zsets: dict[bytes, dict[bytes, float]] = {}
        self.wide: set[bytes] = set()
        #: key -> (TTL in seconds, event time in epoch seconds when it was set)
        self.expiry: dict[bytes, tuple[int, int]] = {}
        self.limits = limits
        self.clock = 0
        #: hash key -> longest field or value it ever held, most fields it ever had
        self.longest: dict[bytes, int] = {}
        self.most: dict[bytes, int] = {}
        #: set key -> [hash table size, rehash steps since it last resized]
        self.tables: dict[bytes, list[int]] = {}

    # -- generic ------------------------------------------------------------------------------
    def delete(self, *keys: bytes) -> int:
        gone = 0
        for key in keys:
            if self.data.pop(key, None) is not None or self.zsets.pop(key, None) is not None:
                gone += 1
            self.wide.discard(key)
            self.expiry.pop(key, None)
            self.tables.pop(key, None)
            self.longest.pop(key, None)
            self.most.pop(key, None)
        return gone

    def exists(self, key: bytes) -> int:
        return int(key in self.data or key in self.zsets)

    def _typed(self, key: bytes, kind: type) -> Any:
        value = self.data.get(key)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"WRONGTYPE {key!r}")
        return value

    # -- strings ------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return cast(bytes | None, self._typed(key, bytes))

    def put(self, key: bytes, value: bytes, ex: int | None = None) -> None:
        self.delete(key)
        self.data[key] = value
        if ex is not None:
            self.expiry[key] = (ex, self.clock)

    def incr(self, key: bytes) -> int:
        value = int(self.get(key) or b"0") + 1
        self.data[key] = str(value).encode()
        return value

    # -- hashes -------------------------------------------------------------------------------
    def hset(self, key: bytes, pairs: Sequence[bytes]) -> int:
        current = cast(dict[bytes, bytes] | None, self._typed(key, dict))
        if current is None:
            current = self.data[key] = {}
        added = 0
        longest = self.longest.get(key, 0)
        for i in range(0, len(pairs), 2):
            name, value = pairs[i], pairs[i + 1]
            added += name not in current
            current[name] = value
            longest = max(longest, len(name), len(value))
        self.longest[key] = longest
        self.most[key] = max(self.most.get(key, 0), len(current))
        return added

    def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        return dict(cast(dict[bytes, bytes] | None, self._typed(key, dict)) or {})

    def hget(self, key: bytes, name: bytes) -> bytes | None:
        current = cast(dict[bytes, bytes] | None, self._typed(key, dict))
        return None if current is None else current.get(name)

    def hkeys(self, key: bytes) -> list[bytes]:
        return list(cast(dict[bytes, bytes] | None, self._typed(key, dict)) or ())

    def hdel(self, key: bytes, *names: bytes) -> int:
        current = cast(dict[bytes, bytes] | None, self._typed(key, dict))
        if current is None:
            return 0
        gone = sum(current.pop(name, None) is not None for name in names)
        if not current:
            self.delete(key)
        return gone

    # -- sets ---------------------------------------------------------------------------------
    def _table_step(self, key: bytes, used_before: int, adds: bool) -> None:
        """Follow a set's hash table: its size, and the operations since it last resized.

        Every add or delete does one incremental rehash step; a set that grew lately keeps
        its old table until enough of them ran, so the bulk path repeats as many.
        """
        table = self.tables.setdefault(key, [0, 0])
        table[1] += 1
        if adds:
            if table[0] == 0:
                table[0] = 4
            elif used_before >= table[0]:
                table[0] = 1 << used_before.bit_length()  # next power of two above used
                table[1] = 0
        elif table[0] > 4 and (used_before - 1) * 100 < table[0] * 10:
            table[0] = max(4, 1 << max(0, used_before - 2).bit_length())
            table[1] = 0

    def sadd(self, key: bytes, *members: bytes) -> int:
        current = cast(set[bytes] | None, self._typed(key, set))
        if current is None:
            current = self.data[key] = set()
        before = len(current)
        for member in members:
            self._table_step(key, len(current), member not in current)
            current.add(member)
        limits = self.limits
        if (
            limits.set_entries is not None
            and limits.set_value is not None
            and (
                len(current) > limits.set_entries or any(len(m) > limits.set_value for m in members)
            )
        ):
            self.wide.add(key)
        return len(current) - before

    def srem(self, key: bytes, *members: bytes) -> int:
        current = cast(set[bytes] | None, self._typed(key, set))
        if current is None:
            return 0
        before = len(current)
        for member in members:
            if member in current:
                self._table_step(key, len(current), adds=False)
                current.discard(member)
            else:
                self.tables.setdefault(key, [0, 0])[1] += 1
        if not current:
            self.delete(key)
        return before - len(current)

    def smembers(self, key: bytes) -> set[bytes]:
        return set(cast(set[bytes] | None, self._typed(key, set)) or ())

    # -- lists --------------------------------------------------------------------------------
    def rpush(self, key: bytes, *values: bytes) -> int:
        current = cast(list[bytes] | None, self._typed(key, list))
        if current is None:
            current = self.data[key] = []
        current.extend(values)
        return len(current)

    def lrange(self, key: bytes, start: int, stop: int) -> list[bytes]:
        current = cast(list[bytes] | None, self._typed(key, list)) or []
        n = len(current)
        start = max(start + n if start < 0 else start, 0)
        stop = stop + n if stop < 0 else min(stop, n - 1)
        return current[start : stop + 1] if start <= stop else []

    def ltrim(self, key: bytes, start: int, stop: int) -> None:
        current = cast(list[bytes] | None, self._typed(key, list))
        if current is None:
            return
        kept = self.lrange(key, start, stop)
        if kept:
            self.data[key] = kept
        else:
            self.delete(key)

    # -- sorted sets --------------------------------------------------------------------------
    def zadd(self, key: bytes, mapping: dict[bytes, float]) -> int:
        current = self.zsets.setdefault(key, {})
        added = sum(member not in current for member in mapping)
        current.update(mapping)
        limits = self.limits
        if len(current) > limits.zset_entries or any(len(m) > limits.zset_value for m in mapping):
            self.wide.add(key)
        return added

    def zrem(self, key: bytes, *members: bytes) -> int:
        current = self.zsets.get(key)
        if current is None:
            return 0
        gone = sum(current.pop(m, None) is not None for m in members)
        if not current:
            self.delete(key)
        return gone


def _schema(arg: bytes) -> dict[str, bytes]:
    """A key schema argument (``Keys.graph_schema`` / ``Keys.person_schema``) as bytes."""
    return {name: str(value).encode() for name, value in orjson.loads(arg).items()}


def _entry(k: dict[str, bytes], token: bytes) -> tuple[bytes, bytes]:
    """An identifier's graph entry: its bucket's key and its field there (the scripts'
    ``bucket_of`` and ``field_of``)."""
    chars = int(k["bucket_chars"])
    return k["identifier"] + token[2 : 2 + chars], token[:2] + token[2 + chars :]


def _lookup_entry(k: dict[str, bytes], token: bytes) -> tuple[bytes, bytes]:
    """An identifier's lookup record: its lookup bucket's key and its field there
    (``Keys.lookup_entry``; the field is the one of its graph entry)."""
    chars = int(k["bucket_chars"])
    return k["lookup"] + token[2 : 2 + chars], token[:2] + token[2 + chars :]


def _owner(r: MemoryRedis, k: dict[str, bytes], token: bytes) -> bytes | None:
    """The person an identifier belongs to (its field in its graph bucket)."""
    return r.hget(*_entry(k, token))


def _own(r: MemoryRedis, k: dict[str, bytes], token: bytes, person: bytes) -> None:
    """Give an identifier to a person."""
    bucket, field = _entry(k, token)
    r.hset(bucket, [field, person])


def _person_bucket(k: dict[str, bytes], prefix: str, person: bytes) -> bytes:
    """A person's bucket of redirects, absorbed persons or facts (the scripts'
    ``person_bucket``, ``facts_bucket``)."""
    return k[prefix] + person[: int(k["bucket_chars"])]


#: The graph version among a person's packed facts, as ``graph_read.lua`` finds it.
_FACT_VERSION = re.compile(rb"v\x1f(\d+)")  # at the start: the version comes first


def _facts_of(text: bytes | None) -> dict[bytes, bytes]:
    """A person's packed facts (its field of its facts bucket) as name -> value, in order: a
    dict keeps a changed name's place and puts a new one last, as a Redis hash did."""
    facts: dict[bytes, bytes] = {}
    for entry in (text or b"").split(_FACTS_SEP):
        name, separated, value = entry.partition(_FACT_VALUE)
        if separated:
            facts[name] = value
    return facts


def _packed(facts: dict[bytes, bytes]) -> bytes:
    """A person's facts as its field of its facts bucket holds them (``keys.packed_facts``):
    ``name\x1fvalue`` joined by ``\x1e``, the version first."""
    version = [b"v" + _FACT_VALUE + facts[b"v"]] if b"v" in facts else []
    rest = [name + _FACT_VALUE + value for name, value in facts.items() if name != b"v"]
    return _FACTS_SEP.join(version + rest)


def _lua_text(value: object) -> bytes:
    """A plan's value as ``tostring`` writes it (cjson decodes every number as a double)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return b"%.14g" % value
    return _b(value)


class _HeldFacts:
    """The facts of the persons one ``graph_apply`` call touches (``facts_of``): each read
    once, changed in place, the changed ones written back by ``store`` (``store_facts``)."""

    def __init__(self, r: MemoryRedis, k: dict[str, bytes]) -> None:
        self.r, self.k = r, k
        self.held: dict[bytes, dict[bytes, bytes]] = {}
        self.changed: set[bytes] = set()

    def of(self, person: bytes) -> dict[bytes, bytes]:
        facts = self.held.get(person)
        if facts is None:
            bucket = _person_bucket(self.k, "facts", person)
            facts = self.held[person] = _facts_of(self.r.hget(bucket, person))
        return facts

    def get(self, person: bytes, name: bytes) -> bytes | None:
        return self.of(person).get(name)

    def set(self, person: bytes, name: bytes, value: bytes) -> None:
        self.of(person)[name] = value
        self.changed.add(person)

    def add(self, person: bytes, name: bytes, delta: int) -> None:
        """``add_fact``: a count as Lua writes a whole number."""
        self.set(person, name, b"%d" % (int(self.get(person, name) or b"0") + delta))

    def drop(self, person: bytes, name: bytes) -> None:
        if self.of(person).pop(name, None) is not None:
            self.changed.add(person)

    def clear(self, person: bytes) -> None:
        """``drop_facts``: removed when written back, in the order it was first read."""
        self.of(person).clear()
        self.changed.add(person)

    def store(self) -> None:
        for person, facts in self.held.items():
            if person in self.changed:
                bucket = _person_bucket(self.k, "facts", person)
                if facts:
                    self.r.hset(bucket, [person, _packed(facts)])
                else:
                    self.r.hdel(bucket, person)
        self.changed.clear()


def _met_entry(k: dict[str, bytes], token: bytes) -> tuple[bytes, bytes]:
    """An identifier's meetings: their bucket's key (its graph bucket) and its field there
    (its entry's, marked)."""
    chars = int(k["bucket_chars"])
    return k["met"] + token[2 : 2 + chars], k["met_field"] + token[:2] + token[2 + chars :]


def _split_members(value: bytes | None) -> list[bytes]:
    """The members of a set kept as a bucket's field, joined by ``,`` (``split_members``)."""
    return [member for member in value.split(b",") if member] if value else []


def _add_member(r: MemoryRedis, key: bytes, field: bytes, member: bytes) -> None:
    """Add a member to the set a bucket's field holds, unless there (``add_member``)."""
    value = r.hget(key, field)
    if member in _split_members(value):
        return
    r.hset(key, [field, member if value is None else value + b"," + member])


def _redirect_of(r: MemoryRedis, k: dict[str, bytes], person: bytes) -> bytes | None:
    """Whom a merged-away person went into (``redirect_of``)."""
    return r.hget(_person_bucket(k, "redirect", person), k["redirect_field"] + person)


def _live(r: MemoryRedis, k: dict[str, bytes], person: bytes) -> bytes:
    for _ in range(32):
        next_person = _redirect_of(r, k, person)
        if next_person is None:
            return person
        person = next_person
    return person


def _graph_read(r: MemoryRedis, keys: list[bytes], args: list[bytes]) -> Any:
    """Port of ``graph_read.lua``."""
    k, n = _schema(args[0]), int(args[1])
    kept = int(args[2 + n])
    pairs = args[3 + n : 3 + n + 2 * kept]
    known = dict(zip(pairs[::2], pairs[1::2], strict=True))
    rows: list[bytes] = []
    persons: list[bytes] = []
    seen: list[bytes] = []
    claim_rows: list[list[bytes]] = []
    chars = int(k["bucket_chars"])
    for i in range(n):
        token = args[2 + i]
        owner = r.hget(keys[i], token[:2] + token[2 + chars :]) or b""
        junk = r.get(k["junk"] + token) or b""
        erased = r.get(k["tombstone"] + token) or b""
        met: list[bytes] = []
        met_read = _split_members(r.hget(*_met_entry(k, token))) if owner or junk else []
        for person in met_read:
            now = _live(r, k, person)
            if now not in met:
                met.append(now)
        if owner or junk or erased or met:
            row = [str(i + 1).encode(), owner, b"1" if junk else b"", erased, *met]
            rows.append(b"\x1f".join(row))
        if owner and owner not in seen:
            seen.append(owner)
        if owner and met and token[:1] in k["movable"]:
            entries = r.lrange(k["claims"] + token, 0, -1)
            if entries:
                held = [e.split(b":", 1) for e in entries]
                live = [t + b":" + _live(r, k, p) for t, p in held]
                claim_rows.append([str(i + 1).encode(), *live])
    claims: list[bytes] = []
    for row in claim_rows:
        for entry in row[1:]:
            person = entry.split(b":", 1)[1]
            if person not in seen:
                seen.append(person)
        claims.append(b"\x1f".join(row))
    for owner in seen:
        text = r.hget(_person_bucket(k, "facts", owner), owner)
        version = _FACT_VERSION.match(text or b"")
        if owner in known and version is not None and version.group(1) == known[owner]:
            persons.append(owner + b"\x1f=")
        elif text is not None:  # every separator a \x1f: the reply pairs name and value
            persons.append(owner + b"\x1f" + text.replace(_FACTS_SEP, _FACT_VALUE))
        else:
            persons.append(owner)
    receipts = [
        b"%d\x1f%s" % (j + 1, body)
        for j, event in enumerate(args[3 + n + 2 * kept :])
        if (body := r.get(k["receipt"] + event))
    ]
    sections = [rows, persons, receipts, claims]
    return b"\x1d".join(b"\x1e".join(section) for section in sections)


def _graph_apply(r: MemoryRedis, keys: list[bytes], args: list[bytes]) -> int:
    """Port of ``graph_apply.lua``."""
    k = _schema(args[0])
    stop = k["batch_stop"] + args[1]
    max_log, describing = int(args[2]), args[3]
    if r.exists(stop):
        return 0
    applied = 0
    facts = _HeldFacts(r, k)
    for raw in args[4:]:
        plan = orjson.loads(raw)
        if not _guard_holds(r, k, facts, plan):
            r.put(stop, b"1", ex=60)
            facts.store()
            return applied
        _apply_plan(r, k, facts, plan, max_log, describing)
        applied += 1
    facts.store()
    return applied


def _guard_holds(
    r: MemoryRedis, k: dict[str, bytes], facts: _HeldFacts, plan: dict[str, Any]
) -> bool:
    for token, expected in plan["owners"].items():
        if (_owner(r, k, token.encode()) or b"").decode() != expected:
            return False
    for token, expected in plan["junk"].items():
        if (r.get(k["junk"] + token.encode()) or b"").decode() != expected:
            return False
    return all(
        int(facts.get(person.encode(), b"v") or b"0") == int(expected)
        for person, expected in plan["versions"].items()
    )


def _log_bucket(k: dict[str, bytes], person: bytes) -> bytes:
    """The log bucket of a person (the scripts' ``log_bucket``: its facts bucket)."""
    return k["log_bucket"] + person[: int(k["bucket_chars"])]


def _log_field(k: dict[str, bytes], person: bytes) -> bytes:
    """A person's field of its log bucket (``log_field``)."""
    return k["log_field"] + person


def _log_of(
    r: MemoryRedis, k: dict[str, bytes], person: bytes, last: int | None = None
) -> list[bytes]:
    """A person's explain entries, the last ``last`` of them (``None``: all): its field of
    its log bucket split by ``\\x1e`` while short, its list once longer (``log_of``)."""
    text = r.hget(_log_bucket(k, person), _log_field(k, person))
    if text is None:
        return r.lrange(k["log"] + person, -last if last else 0, -1)
    entries = text.split(_LOG_SEP)
    if last and len(entries) > last:
        return entries[-last:]
    return entries


def _drop_log(r: MemoryRedis, k: dict[str, bytes], person: bytes) -> None:
    """Delete a person's explain log in both forms (``drop_log``)."""
    r.hdel(_log_bucket(k, person), _log_field(k, person))
    r.delete(k["log"] + person)


def _append_log(
    r: MemoryRedis, k: dict[str, bytes], person: bytes, entries: list[bytes], max_log: int
) -> None:
    """Append to a person's explain log, keeping the last ``max_log`` entries
    (``append_log``): a field of its log bucket while the joined entries are at most
    ``log_inline`` bytes and none holds the separator; else the whole log goes to its list,
    for good."""
    if not entries:
        return
    long = k["log"] + person
    if not r.exists(long):
        bucket, field = _log_bucket(k, person), _log_field(k, person)
        text = r.hget(bucket, field)
        added = _LOG_SEP.join(entries)
        joined = added if text is None else text + _LOG_SEP + added
        plain = not any(_LOG_SEP in entry for entry in entries)
        if plain and len(joined) <= int(k["log_inline"]):
            every = joined.split(_LOG_SEP)
            if len(every) > max_log:
                joined = _LOG_SEP.join(every[-max_log:])
            r.hset(bucket, [field, joined])
            return
        r.hdel(bucket, field)
        entries = [*([] if text is None else text.split(_LOG_SEP)), *entries]
    if r.rpush(long, *entries) > max_log:
        r.ltrim(long, -max_log, -1)


def _apply_plan(
    r: MemoryRedis,
    k: dict[str, bytes],
    facts: _HeldFacts,
    plan: dict[str, Any],
    max_log: int,
    describing: bytes,
) -> None:
    person = plan["person"].encode()
    for gone_text in plan["absorbed"]:
        gone = gone_text.encode()
        fields: list[tuple[bytes, bytes]] = []
        for field, value in list(facts.of(gone).items()):
            if len(field) > 1:
                if field[:1] != b"@" and field[:1] not in describing:
                    _own(r, k, field, person)
                fields.append((field, value))
        for field, value in fields:
            facts.set(person, field, value)
        _append_log(r, k, person, _log_of(r, k, gone), max_log)
        _drop_log(r, k, gone)
        facts.clear(gone)
        absorbed, absorbed_field = _person_bucket(k, "absorbed", person), k["absorbed_field"]
        r.hset(_person_bucket(k, "redirect", gone), [k["redirect_field"] + gone, person])
        _add_member(r, absorbed, absorbed_field + person, gone)
        gone_absorbed = _person_bucket(k, "absorbed", gone)
        for older in _split_members(r.hget(gone_absorbed, absorbed_field + gone)):
            r.hset(_person_bucket(k, "redirect", older), [k["redirect_field"] + older, person])
            _add_member(r, absorbed, absorbed_field + person, older)
        r.hdel(gone_absorbed, absorbed_field + gone)
    for token_text, former_text, entry, moved_at in plan.get("move", ()):
        token, former = token_text.encode(), former_text.encode()
        claims = k["claims"] + token
        if not r.exists(claims):
            since = facts.get(former, b"@" + token) or b"0"
            r.rpush(claims, since + b":" + former)
        if r.rpush(claims, _lua_text(moved_at) + b":" + person) > int(k["max_claims"]):
            r.ltrim(claims, -int(k["max_claims"]), -1)
        facts.drop(former, token)
        facts.drop(former, b"@" + token)
        facts.add(former, b"v", 1)
        _append_log(r, k, former, [entry.encode()], max_log)
        _own(r, k, token, person)
        facts.set(person, token, b"")
    claimed = plan.get("claim", [])
    for i in range(0, len(claimed), 2):
        facts.set(person, _lua_text(claimed[i]), _lua_text(claimed[i + 1]))
    for token in plan["attach"]:
        _own(r, k, token.encode(), person)
    for token in plan["attach"]:
        facts.set(person, token.encode(), b"")
    for token in plan["describe"]:
        facts.set(person, token.encode(), b"1")
    for token, met in plan["met"]:
        _add_member(r, *_met_entry(k, token.encode()), met.encode())
    for token_text, reason in plan["flag"]:
        token = token_text.encode()
        r.put(k["junk"] + token, reason.encode())
        owner = _owner(r, k, token)
        if owner:
            r.hdel(*_entry(k, token))
            r.delete(k["claims"] + token)
            if token[:1] in describing:
                facts.drop(owner, token)
            else:
                facts.drop(owner, token)
                facts.drop(owner, b"@" + token)
            if owner != person:
                facts.add(owner, b"v", 1)
    entries = [entry.encode() for entry in plan["log"]]
    if plan.get("repeats"):
        recent = set(_log_of(r, k, person, 50))
        entries = [entry for entry in entries if entry not in recent]
    _append_log(r, k, person, entries, max_log)
    receipt = plan.get("receipt")
    if receipt:
        key = k["receipt"] + receipt["event"].encode()
        r.put(key, receipt["body"].encode(), ex=receipt["ttl"])
    facts.add(person, b"v", 1)


def _erase(r: MemoryRedis, keys: list[bytes], args: list[bytes]) -> Any:
    """Port of ``erase.lua``."""
    k, at = _schema(args[0]), int(args[1])
    seen: set[bytes] = set()
    out: list[Any] = []

    def tombstone(token: bytes) -> None:
        key = k["tombstone"] + token
        before = int(r.get(key) or b"0")
        if at > before:
            r.put(key, str(at).encode())

    for token in args[2:]:
        tombstone(token)
    for token in args[2:]:
        person = _owner(r, k, token)
        if person and person not in seen:
            seen.add(person)
            facts = _person_bucket(k, "facts", person)
            held = _facts_of(r.hget(facts, person))
            members = [f for f in held if len(f) > 1 and f[:1] != b"@"]
            for member in members:
                r.hdel(*_entry(k, member))
                r.hdel(*_met_entry(k, member))
                r.delete(k["claims"] + member)
                tombstone(member)
            absorbed = _person_bucket(k, "absorbed", person)
            for gone in _split_members(r.hget(absorbed, k["absorbed_field"] + person)):
                r.hdel(_person_bucket(k, "redirect", gone), k["redirect_field"] + gone)
            r.hdel(absorbed, k["absorbed_field"] + person)
            events: set[str] = set()
            for entry in _log_of(r, k, person):
                decoded = parse_entry(entry)
                if decoded.get("k") == "move":
                    for token in decoded["t"]:
                        claims = k["claims"] + token.encode()
                        kept = [c for c in r.lrange(claims, 0, -1)
                                if c.split(b":", 1)[1] != person]  # fmt: skip
                        r.delete(claims)
                        if kept:
                            r.rpush(claims, *kept)
                event = decoded.get("e")
                if event and event not in events:
                    events.add(event)
                    r.delete(k["receipt"] + receipt_suffix(event).encode())
            r.hdel(_log_bucket(k, person), _log_field(k, person))
            r.hdel(facts, person)
            r.delete(k["log"] + person)
            out.append([person, *members])
    return out


def _persons_read(r: MemoryRedis, keys: list[bytes], args: list[bytes]) -> Any:
    """Port of ``persons_read.lua``: a person's state is its field of its person bucket,
    ``v<version>:<state>`` or ``r<survivor>``."""
    n = int(args[0])
    persons: list[list[bytes | int]] = []
    names = args[1 + n : 1 + 2 * n]
    for key, known, person in zip(keys[:n], args[1 : 1 + n], names, strict=True):
        value = r.hget(key, person)
        if value is not None and value[:1] == b"r":
            persons.append([value[1:], 0, b"", 0])
            continue
        version, state = 0, b""
        if value is not None:
            held, _, state = value[1:].partition(b":")
            version = int(held)
        if version > 0 and version == int(known):
            persons.append([b"", version, b"", 1])
        else:
            persons.append([b"", version, state, 0])
    return [persons, [r.get(key) or b"" for key in keys[n:]]]


#: A person's field of its bucket while it holds a state (``persons_write.lua``'s guard).
_HELD_VERSION = re.compile(rb"v(\d+):")


def _persons_write(r: MemoryRedis, keys: list[bytes], args: list[bytes]) -> Any:
    """Port of ``persons_write.lua``."""
    k, ttl, groups = _schema(args[0]), int(args[1]), int(args[2])

    def person_key(person: str) -> bytes:
        """A person's bucket (its state is its field there, the whole id)."""
        return k["person"] + person.encode()[: int(k["bucket_chars"])] + k["person_end"]

    def version_of(person: str) -> int | None:
        """The version a person's field holds (none: 0; merged away: ``None``)."""
        held = _HELD_VERSION.match(r.hget(person_key(person), person.encode()) or b"v0:")
        return int(held.group(1)) if held else None

    out = []
    for raw in args[3 : 3 + groups]:
        group = orjson.loads(raw)
        holds = all(version_of(person) == int(version) for person, version in group["guard"])
        if not holds:
            out.append(0)
            continue
        for person, version, index in group["write"]:
            value = b"v" + str(version).encode() + b":" + args[index - 1]
            r.hset(person_key(person), [person.encode(), value])
        for person, survivor in group["absorbed"]:
            r.hset(person_key(person), [person.encode(), b"r" + survivor.encode()])
        for key, marker in group["markers"]:
            r.put(key.encode(), marker.encode(), ex=ttl)
        for version, checked, index, tokens in group["lookups"]:
            packed = args[index - 1]
            holder = packed.split(_SEP, 1)[0]
            for token_text in tokens:
                token = token_text.encode()
                bucket, field = _lookup_entry(k, token)
                if token[:1] in k["movable"] and _owner(r, k, token) != holder:
                    continue
                if not checked or _record_version(r.hget(bucket, field)) < int(version):
                    r.hset(bucket, [field, packed])
        for token in group["unlink"]:
            r.hdel(*_lookup_entry(k, token.encode()))
        out.append(1)
    return out


#: How a lookup record separates its fields (``LookupSummary.packed``).
_SEP = RECORD_SEP.encode()


def _record_version(record: bytes | None) -> int:
    """The version a packed lookup record holds, -1 when there is none."""
    return -1 if record is None else LookupSummary.from_packed(record).version


_PORTS: dict[str, Callable[[MemoryRedis, list[bytes], list[bytes]], Any]] = {
    "graph_read": _graph_read,
    "graph_apply": _graph_apply,
    "erase": _erase,
    "persons_read": _persons_read,
    "persons_write": _persons_write,
}


def script_digests() -> dict[str, str]:
    """SHA-1 of each Lua script as the package ships it now."""
    folder = files("bestand.store").joinpath("scripts")
    return {
        name: hashlib.sha1(folder.joinpath(f"{name}.lua").read_bytes()).hexdigest()  # noqa: S324
        for name in _PORTS
    }


class _Pipeline:
    """Queued commands of :class:`MemoryClient`, run in order by ``execute``."""

    def __init__(self, client: MemoryClient) -> None:
        self._client = client
        self._queue: list[Callable[[], Any]] = []

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._queue.clear()

    def queue(self, call: Callable[[], Any]) -> _Pipeline:
        self._queue.append(call)
        return self

    def __getattr__(self, name: str) -> Callable[..., _Pipeline]:
        method = getattr(self._client, name)

        def queued(*args: Any, **kwargs: Any) -> _Pipeline:
            return self.queue(lambda: _run_now(method(*args, **kwargs)))

        return queued

    async def execute(self) -> list[Any]:
        calls, self._queue = self._queue, []
        return [call() for call in calls]


def _run_now(coro: Any) -> Any:
    """Run a coroutine of :class:`MemoryClient` that never awaits anything."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("an in-memory command awaited something")  # pragma: no cover


class MemoryClient:
    """The part of ``redis.asyncio.Redis`` the stores use, on :class:`MemoryRedis`; scripts
    run by their Python ports, found by the SHA-1 the worker calls them by."""

    def __init__(self, store: MemoryRedis) -> None:
        self.store = store
        scripts = Scripts.load()
        self.ports = {getattr(scripts, name).sha: port for name, port in _PORTS.items()}

    def pipeline(self, transaction: bool = False) -> _Pipeline:
        return _Pipeline(self)

    async def get(self, name: str) -> bytes | None:
        return self.store.get(_b(name))

    async def mget(self, names: Sequence[str]) -> list[bytes | None]:
        return [self.store.get(_b(name)) for name in names]

    async def hkeys(self, name: str) -> list[bytes]:
        return self.store.hkeys(_b(name))

    async def lrange(self, name: str, start: int, end: int) -> list[bytes]:
        return self.store.lrange(_b(name), start, end)

    async def hset(self, name: str, key: str, value: object) -> int:
        return self.store.hset(_b(name), [_b(key), _b(value)])

    async def hget(self, name: str, key: str) -> bytes | None:
        return self.store.hget(_b(name), _b(key))

    async def hmget(self, name: str, *fields: str) -> list[bytes | None]:
        return [self.store.hget(_b(name), _b(f)) for f in fields]

    async def hdel(self, name: str, *fields: str) -> int:
        return self.store.hdel(_b(name), *(_b(f) for f in fields))

    async def exists(self, name: str) -> int:
        return self.store.exists(_b(name))

    async def unlink(self, *names: str) -> int:
        return self.store.delete(*(_b(n) for n in names))

    async def zadd(self, name: str, mapping: dict[str, float]) -> int:
        return self.store.zadd(_b(name), {_b(k): float(v) for k, v in mapping.items()})

    async def zrem(self, name: str, *members: str) -> int:
        return self.store.zrem(_b(name), *(_b(m) for m in members))

    async def execute_command(self, *args: Any) -> Any:
        """``EVALSHA``: the script of that SHA-1, run by its Python port."""
        if args[0] != "EVALSHA":
            raise NotImplementedError(f"the in-process Redis has no {args[0]}")
        port = self.ports[args[1]]
        count = int(args[2])
        keys = [_b(k) for k in args[3 : 3 + count]]
        return port(self.store, keys, [_b(a) for a in args[3 + count :]])


# --------------------------------------------------------------------------------------------
# The template shop through the worker's handlers
# --------------------------------------------------------------------------------------------


def settings_for(prefix: str, redis_url: str | None = None) -> Settings:
    """Settings of the run: the environment's, with our key prefix."""
    base = Settings()
    url = redis_url or base.redis_url
    return base.model_copy(update={"redis_prefix": prefix, "redis_url": url})


def _epoch(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(str(event["event_time"])).timestamp())


async def replay(
    events: Sequence[dict[str, Any]],
    settings: Settings,
    client: Any,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Counter[str]:
    """Send events through the worker's batch processor one at a time, as one worker would
    at a trickle (the state does not depend on the batch size). New persons' and links'
    explain entries go where the settings send them: with ``BESTAND_EXPLAIN_LINKS=topic``
    (the default) to the explain topic, in Kafka, so not into this Redis."""

    outcome: Counter[str] = Counter()

    async def to_the_topic(links: Sequence[Links], taken_back: Sequence[Links]) -> None:
        # Kafka's, not Redis's: only counted (key and value bytes of each message).
        for link in links:
            key = topic_key(link.person, link.event_id)
            outcome["explain topic messages"] += 1
            outcome["explain topic bytes"] += len(key) + len(LOG_SEP.join(link.entries).encode())
        outcome["explain topic messages"] += len(taken_back)

    sink = to_the_topic if settings.explain_links == "topic" else None
    processor = processor_for(settings, client, WorkerMetrics(), links=sink)
    with _packed_calls_in_memory():
        for offset, event in enumerate(events):
            if on_event is not None:
                on_event(event)
            message = Incoming(topic_for(event, settings), 0, offset, None, orjson.dumps(event))
            for out in await processor.process([message]):
                outcome[out.destination] += 1
    return outcome


@contextmanager
def _packed_calls_in_memory() -> Iterator[None]:
    """Script calls the compiled core packed in the Redis protocol go to the in-process
    Redis too (read back into their parts); a real client's go to Redis as ever."""
    send = Scripts.send

    async def sending(self: Scripts, client: Any, commands: Sequence[bytes]) -> list[Any]:
        if not isinstance(client, MemoryClient):
            return await send(self, client, commands)
        replies = []
        for command in commands:
            sha, keys, args = script_call(command)
            replies.append(await client.execute_command("EVALSHA", sha, len(keys), *keys, *args))
        return replies

    Scripts.send = sending  # type: ignore[method-assign]
    try:
        yield
    finally:
        Scripts.send = send  # type: ignore[method-assign]


def emulate(events: Sequence[dict[str, Any]], settings: Settings, limits: Limits) -> MemoryRedis:
    """The keyspace the worker leaves after ``events``, built in process."""
    store = MemoryRedis(limits)
    client = MemoryClient(store)

    def tick(event: dict[str, Any]) -> None:
        store.clock = _epoch(event)

    asyncio.run(replay(events, settings, client, tick))
    return store


# --------------------------------------------------------------------------------------------
# The keyspace as write commands
# --------------------------------------------------------------------------------------------

#: Key types in report order: code, label, whether the keys scale with identifiers (a key
#: per identifier; the buckets of graph entries, lookup records and meetings by their
#: entries, a field per identifier; the buckets of graph facts, person states, explain logs,
#: redirects and absorbed persons, a field per person, scale with persons).
CATEGORIES: tuple[tuple[str, str, bool], ...] = (
    ("graph", "graph entries  <p>:{g}:i:<hash[:3]>, all", True),
    ("lookup", "lookup records  <p>:l:<hash[:3]>, all", True),
    ("met", "met sets  <p>:{g}:m:<hash[:3]>, all", True),
    ("claims", "cookie claims  <p>:{g}:c:<kind>:<hash>", True),
    ("junk", "junk flags  <p>:{g}:j:<kind>:<hash>", True),
    ("facts", "graph facts  <p>:{g}:k:<person[:3]>, all", False),
    ("state", "person states  <p>:p:{<person[:3]>}, all", False),
    ("explain", "explain logs  <p>:{g}:y:<person[:3]>, all", False),
    ("explain_long", "explain logs, long  <p>:{g}:x:<person>", False),
    ("dedupe", "dedupe markers  <p>:d:{<p[:3]>}:<person>:<event>", False),
    ("redirect", "redirects  <p>:{g}:r:<person[:3]>, all", False),
    ("absorbed", "absorbed sets  <p>:{g}:a:<person[:3]>, all", False),
    ("receipt", "receipts  <p>:{g}:e:<event>", False),
    ("values", "values set  <p>:values", False),
)
LABELS = {code: label for code, label, _ in CATEGORIES}
PER_IDENTIFIER = {code for code, _, per_id in CATEGORIES if per_id}
_GRAPH_CODES = {
    b"i": "graph",
    b"k": "facts",
    b"y": "explain",
    b"x": "explain_long",
    b"m": "met",
    b"c": "claims",
    b"j": "junk",
    b"r": "redirect",
    b"a": "absorbed",
    b"e": "receipt",
}
_PAD = b"~pad"


def category(key: bytes, prefix: bytes) -> str:
    """The key type of one of our keys."""
    rest = key[len(prefix) + 1 :]
    if rest.startswith(b"{g}:"):
        return _GRAPH_CODES[rest[4:5]]
    head = rest[:2]
    if head == b"p:":
        return "state"
    if head == b"d:":
        return "dedupe"
    if head == b"l:":
        return "lookup"
    if rest == b"values":
        return "values"
    raise ValueError(f"unknown key {key!r}")


def _field_of(token: bytes) -> bytes:
    """An identifier's field in its graph bucket and its lookup bucket (``keys.bucket_field``)."""
    return bucket_field(token.decode()).encode()


def _token_of(bucket: bytes, name: bytes) -> bytes:
    """The identifier of a field of a bucket (``keys.token_of``; ``bucket``: its suffix)."""
    return token_of(bucket.decode(), name.decode()).encode()


def _person_in_key(key: bytes, prefix: bytes, kind: str) -> bytes:
    rest = key[len(prefix) + 1 :]
    if kind == "dedupe":  # d:{<person[:3]>}:<person>:<event>
        return rest[rest.index(b"}") + 2 :].partition(b":")[0]
    return rest[6:]  # {g}:x:<person>, {g}:e:<event>


@dataclass(frozen=True)
class Entry:
    """A field of a bucket hash, as a clone writes it: the bucket is named by the first
    :data:`BUCKET_CHARS` characters of ``atom``, the field is ``head`` and the rest of it (all
    of it where ``whole``), the value ``mark`` (a letter; mostly none), ``holder`` (an atom: a
    person id; empty for none) and then ``rest``. A clone renames every atom in the value
    (``rest`` too); the mark stays as it is, and is apart because an id right behind a letter
    would be no atom of its own (``r<survivor>`` is one run of id characters).

    A graph entry: ``head`` ``<kind>:``, ``atom`` the identifier's hash, ``holder`` the person
    it belongs to. A lookup record: the same field, ``holder`` the record's person id (its
    first field), ``rest`` the record's other fields (no ids: counts, times, channel,
    interests, consent). An explain log while short: no ``head``, ``atom`` the person id
    (``whole``), no ``holder``, ``rest`` its entries split by ``\\x1e`` (they name persons and
    identifiers). An identifier's meetings: the field of its graph entry, no ``holder``,
    ``rest`` the persons it met joined by ``,``. A person's graph facts: ``atom`` the person
    (``whole``), no ``holder``, ``rest`` its facts packed (``keys.packed_facts``; identifiers
    and describing tokens by name, ``kind:hash``, whose hashes a clone renames). A redirect:
    ``atom`` the merged-away person (``whole``), ``holder`` the person it went into. A
    person's absorbed persons: ``atom`` the person (``whole``), no ``holder``, ``rest`` their
    ids joined by ``,``. A person's state: ``atom`` the person (``whole``), ``mark`` ``v`` and
    ``rest`` ``<version>:<state>`` (the packed state: ``profile/stored.py``; its identifiers
    are 12 raw bytes, which a clone keeps, as it kept them when a state had a hash of its
    own) while it holds one; ``mark`` ``r`` and ``holder`` the person it went into once
    merged away. ``owner``: the live person the entry counts for.
    """

    head: bytes
    atom: bytes
    holder: bytes
    rest: bytes
    owner: bytes | None
    whole: bool = False
    mark: bytes = b""

    @property
    def field(self) -> bytes:
        """The field's name."""
        return self.head + (self.atom if self.whole else self.atom[BUCKET_CHARS:])

    @property
    def value(self) -> bytes:
        """The field's value."""
        return self.mark + self.holder + self.rest

    @property
    def size(self) -> int:
        """Bytes of field and value: what the entry's share of its bucket goes by."""
        return len(self.field) + len(self.value)


@dataclass
class KeyRecord:
    """One key of the template: how to write it and whom it belongs to.

    A bucket (graph entries, lookup records, meetings, graph facts, person states, short
    explain logs, redirects, absorbed persons) belongs to nobody: it holds ``entries`` of many
    persons (their identifiers', or their own), which a clone writes one by one into the
    buckets its own atoms name.
    """

    key: bytes
    category: str
    commands: list[list[bytes]]
    owner: bytes | None = None
    entries: Sequence[Entry] = ()


#: Key types whose keys are buckets: ``<bucket prefix><atom[:BUCKET_CHARS]><end>``, the
#: atom an identifier's hash (graph entries, lookup records, meetings) or a person id
#: (``BY_PERSON``), the end (``BUCKET_ENDS``) mostly none.
BUCKETED = ("graph", "lookup", "met", "facts", "state", "explain", "redirect", "absorbed")
#: Bucketed key types whose buckets a person id names, its field the whole id: graph facts,
#: person states, short explain logs, redirects, absorbed persons.
BY_PERSON = ("facts", "state", "explain", "redirect", "absorbed")
#: Bucketed key types whose values are sets of person ids joined by ``,``.
MEMBER_SETS = ("met", "absorbed")
#: What follows the bucket's name in a bucket's key: a person bucket's name is a hash tag
#: (``<p>:p:{<person[:3]>}``).
BUCKET_ENDS: dict[str, bytes] = {"state": b"}"}


def _bucket_of(code: str, key: bytes) -> tuple[bytes, bytes]:
    """A bucket's key split into the prefix of its kind and its name (``BUCKET_CHARS`` of an
    atom), what follows the name left off."""
    name_end = len(key) - len(BUCKET_ENDS.get(code, b""))
    return key[: name_end - BUCKET_CHARS], key[name_end - BUCKET_CHARS : name_end]


def _entry_name(code: str, bucket: bytes, name: bytes) -> bytes:
    """What a field of a bucket stands for: the identifier (``kind:hash``) of a graph entry,
    lookup record or meetings, the person of graph facts, a state, explain log, redirect or
    absorbed persons (``bucket``: the bucket's name)."""
    if code in BY_PERSON:
        return name
    if code == "graph" and name[:1] == _MET:  # an identifier's meetings, marked
        return _MET + _token_of(bucket, name[1:])
    return _token_of(bucket, name)


def _state_entry(person: bytes, value: bytes, owner: bytes | None) -> Entry:
    """A person's field of its person bucket as an entry: ``v<version>:<state>``, or
    ``r<survivor>`` (``keys.person_value``)."""
    survivor = person_value(value)[0]
    holder = b"" if survivor is None else survivor.encode()
    return Entry(b"", person, holder, value[1 + len(holder) :], owner, whole=True, mark=value[:1])


def _pad_of(record: KeyRecord) -> bytes | None:
    """The long value ``keyspace`` writes into a hash and deletes again, because its history
    made it a hash table its fields now would not make; ``None`` for a hash without one."""
    if any(command[0] == b"HDEL" and command[2:] == [_PAD] for command in record.commands):
        return record.commands[0][-1]
    return None


def bucket_record(
    key: bytes, category: str, entries: Sequence[Entry], pad: bytes | None = None
) -> KeyRecord:
    """A bucket of ``entries`` (``pad``: see :func:`_pad_of`)."""
    fields = [item for e in entries for item in (e.field, e.value)]
    commands = [[b"HSET", key, *fields]]
    if pad is not None:
        commands[0] += [_PAD, pad]
        commands.append([b"HDEL", key, _PAD])
    return KeyRecord(key, category, commands, None, entries)


def _score(value: float) -> bytes:
    return b"%d" % value if value.is_integer() else repr(value).encode()


def keyspace(
    store: MemoryRedis, prefix: str, *, dedupe: str, now: int, limits: Limits | None = None
) -> list[KeyRecord]:
    """Write commands that leave Redis with ``store``'s keys, values, encodings and TTLs.

    ``dedupe``: ``window`` keeps the markers a live worker still holds at ``now`` (with the
    TTL they have left), ``all`` every marker with its full TTL. ``limits``: the encoding
    thresholds of the server written to (default: those the store was built for).
    """
    p = prefix.encode()
    limits = limits or store.limits
    records: list[KeyRecord] = []
    for key, value in store.data.items():
        kind = category(key, p)
        commands: list[list[bytes]]
        if isinstance(value, bytes):
            command = [b"SET", key, value]
            if key in store.expiry:
                ttl, at = store.expiry[key]
                left = ttl - (now - at) if dedupe == "window" else ttl
                if left <= 0:
                    continue
                command += [b"EX", b"%d" % left]
            commands = [command]
        elif isinstance(value, dict):
            pairs = [item for pair in value.items() for item in pair]
            commands = [[b"HSET", key, *pairs]]
            fits = len(value) <= limits.hash_entries and all(
                len(item) <= limits.hash_value for item in pairs
            )
            ever_wide = (
                store.longest.get(key, 0) > limits.hash_value
                or store.most.get(key, 0) > limits.hash_entries
            )
            if ever_wide and fits:
                commands[0] += [_PAD, b"x" * (limits.hash_value + 1)]
                commands.append([b"HDEL", key, _PAD])
        elif isinstance(value, set):
            members: list[bytes] = sorted(value)
            commands = [[b"SADD", key, *members]]
            size, steps = store.tables.get(key, (0, 0))
            if size > 4:
                # One SADD grows the table at the same sizes, then rehashes once per member
                # after the last growth; the worker's history may have done more steps.
                more = min(steps - (len(members) - size // 2 - 1), size)
                if more > 0:
                    commands.append([b"SADD", key, *([members[0]] * more)])
            if key in store.wide and limits.set_value is not None:
                commands[0].append(_PAD + b"x" * limits.set_value)
                commands.append([b"SREM", key, _PAD + b"x" * limits.set_value])
        else:
            commands = [[b"RPUSH", key, *value]]
        records.append(KeyRecord(key, kind, commands))
    for key, scores in store.zsets.items():
        flat = [item for member, score in scores.items() for item in (_score(score), member)]
        commands = [[b"ZADD", key, *flat]]
        fits = len(scores) <= limits.zset_entries and all(
            len(m) <= limits.zset_value for m in scores
        )
        if key in store.wide and fits:
            commands[0] += [b"0", _PAD + b"x" * limits.zset_value]
            commands.append([b"ZREM", key, _PAD + b"x" * limits.zset_value])
        records.append(KeyRecord(key, category(key, p), commands))
    _attribute(records, store, p)
    return records


#: Marks of the fields a facts bucket and a graph bucket hold besides facts and entries
#: (``keys.py``): a person's short log, redirect, absorbed persons; an identifier's meetings.
_REDIRECT = REDIRECT_FIELD.encode()
_PERSON_MARKS = (LOG_FIELD.encode(), _REDIRECT, ABSORBED_FIELD.encode())
_MET = MET_FIELD.encode()


def _attribute(records: list[KeyRecord], store: MemoryRedis, p: bytes) -> None:
    """Give every key the live person it belongs to (junk flags, buckets and the value set:
    nobody), and every entry of a bucket its live owner: a graph entry, lookup record or
    identifier's meetings the identifier's, graph facts, a state, explain log, redirect or
    absorbed persons the person's (a redirect, or the state of a merged-away person: whom it
    went into)."""
    graph = p + b":{g}:"

    def owner_of(token: bytes) -> bytes | None:
        return store.hget(graph + b"i:" + token[2 : 2 + BUCKET_CHARS], _field_of(token))

    def live(person: bytes) -> bytes:
        for _ in range(64):
            after = store.hget(graph + b"k:" + person[:BUCKET_CHARS], _REDIRECT + person)
            if after is None:  # the person's field of its person bucket: 'r<survivor>'
                state = store.hget(p + b":p:{" + person[:BUCKET_CHARS] + b"}", person)
                after = state[1:] if state is not None and state[:1] == b"r" else None
            if after is None:
                return person
            person = after
        return person

    for record in records:
        kind = record.category
        if kind in BUCKETED:
            bucket = _bucket_of(kind, record.key)[1]
            held = cast(dict[bytes, bytes], store.data[record.key])
            entries = []
            for name, value in held.items():
                if kind == "state":  # 'v<version>:<state>', or 'r<survivor>'
                    entries.append(_state_entry(name, value, live(name)))
                    continue
                if kind in BY_PERSON:  # a person's facts, short log, redirect or absorbed
                    head = name[:2] if name[:2] in _PERSON_MARKS else b""
                    person = name[len(head) :]
                    holder = value if kind == "redirect" or head == _REDIRECT else b""
                    rest = value[len(holder) :]
                    entries.append(Entry(head, person, holder, rest, live(person), whole=True))
                    continue
                if kind == "graph" and name[:1] == _MET:  # an identifier's meetings
                    token = _token_of(bucket, name[1:])
                    owner = owner_of(token)
                    counts = None if owner is None else live(owner)
                    entries.append(Entry(_MET + token[:2], token[2:], b"", value, counts))
                    continue
                token = _token_of(bucket, name)
                if kind == "met":  # counts for the identifier's owner (a junk one's: nobody)
                    owner = owner_of(token)
                    counts = None if owner is None else live(owner)
                    entries.append(Entry(token[:2], token[2:], b"", value, counts))
                    continue
                holder = value.split(_SEP, 1)[0]  # a graph entry's value is its person
                # A lookup record counts for the person its identifier belongs to, or, where
                # the graph gives it to nobody now, the person it names.
                counts_for = holder if kind == "graph" else (owner_of(token) or holder)
                rest = value[len(holder) :]
                entries.append(Entry(token[:2], token[2:], holder, rest, live(counts_for)))
            record.entries = entries
        elif kind == "claims":
            owner = owner_of(record.key[len(graph) + 2 :])
            record.owner = None if owner is None else live(owner)
        elif kind not in ("junk", "values"):
            record.owner = live(_person_in_key(record.key, p, kind))


# --------------------------------------------------------------------------------------------
# Clones: the same commands with fresh person ids and identifier hashes
# --------------------------------------------------------------------------------------------

_RUN = re.compile(rb"[A-Za-z0-9_-]+")


def atoms_of(records: Sequence[KeyRecord], prefix: str) -> list[bytes]:
    """Every person id and identifier hash of the template (what a clone renames)."""
    p = prefix.encode()
    graph = p + b":{g}:"
    found: dict[bytes, None] = {}
    for record in records:
        kind = record.category
        if record.entries:  # a bucket's name is part of a hash; its fields hold the rest
            for entry in record.entries:
                found[entry.atom] = None
                if entry.holder:
                    found[entry.holder] = None
                if kind in MEMBER_SETS:  # persons met or absorbed (an erased one: here only)
                    for member in _split_members(entry.rest):
                        found[member] = None
                if kind == "facts":  # describing tokens (names, households) have no entry
                    for name in _facts_of(entry.rest):
                        if name[1:2] == b":":
                            found[name[2:]] = None
        elif kind in ("claims", "junk"):
            found[record.key[len(graph) + 4 :]] = None
        elif kind != "values":
            found[_person_in_key(record.key, p, kind)] = None
    return list(found)


@dataclass
class Compiled:
    """RESP of a command list with holes where atoms go; lengths never change."""

    literals: list[bytes]
    slots: list[int]
    commands: int

    def render(self, atoms: Sequence[bytes]) -> bytes:
        """The RESP with ``atoms[i]`` in every hole of atom ``i``."""
        if not self.slots:
            return self.literals[0]
        pieces: list[bytes] = [b""] * (2 * len(self.slots) + 1)
        pieces[0::2] = self.literals
        filled = [atoms[i] for i in self.slots]
        pieces[1::2] = filled
        return b"".join(pieces)


def compile_commands(commands: Iterable[Sequence[bytes]], index: dict[bytes, int]) -> Compiled:
    """RESP for ``commands``, with a hole for every maximal ``[A-Za-z0-9_-]`` run in ``index``."""
    lengths = [0] * len(index)
    for atom, i in index.items():
        lengths[i] = len(atom)
    pieces = ([_pieces(arg, index) for arg in command] for command in commands)
    return compile_pieces(pieces, lengths)


Piece = bytes | int


def _pieces(data: bytes, index: dict[bytes, int]) -> list[Piece]:
    """``data`` as pieces: a hole for every maximal ``[A-Za-z0-9_-]`` run in ``index``, the
    bytes between as they are (what :func:`compile_commands` renames in an argument)."""
    pieces: list[Piece] = []
    position = 0
    for match in _RUN.finditer(data):
        atom = index.get(match.group())
        if atom is not None:
            pieces += [data[position : match.start()], atom]
            position = match.end()
    pieces.append(data[position:])
    return pieces


def compile_pieces(
    commands: Iterable[Sequence[Sequence[Piece]]], lengths: Sequence[int]
) -> Compiled:
    """RESP for commands whose arguments are pieces: bytes as they are, or an atom's index
    (a hole; ``lengths``: of every atom)."""
    literals: list[bytes] = []
    slots: list[int] = []
    current = bytearray()
    count = 0
    for command in commands:
        count += 1
        current += b"*%d\r\n" % len(command)
        for arg in command:
            size = sum(lengths[p] if isinstance(p, int) else len(p) for p in arg)
            current += b"$%d\r\n" % size
            for piece in arg:
                if isinstance(piece, int):
                    literals.append(bytes(current))
                    current = bytearray()
                    slots.append(piece)
                else:
                    current += piece
            current += b"\r\n"
    literals.append(bytes(current))
    return Compiled(literals, slots, count)


@dataclass
class Buckets:
    """The entries of one bucketed key type (``BUCKETED``) and how a clone writes them.

    A bucket is named by a few characters of an atom, no atom of its own: a clone writes each
    entry (``HSET <prefix><head> <kind>:<tail> <value>``, head and tail the two parts of its
    hash: a graph entry, lookup record or meetings; ``HSET <prefix><head><end> <head><tail>
    <value>``, head and tail the two parts of its person id: graph facts, a state (``end`` the
    ``}`` of the hash tag), explain log, redirect or absorbed persons; every atom in the value
    renamed)
    into the bucket its fresh atom names, among other clones' entries. A template bucket whose
    history made it a hash table (``_pad_of``) makes the bucket of its first entry one too (a
    long field written and deleted; with the template's own ids, the same bucket).
    """

    code: str
    prefix: bytes
    entries: list[Entry]
    #: the atom whose first characters name the bucket, of every entry (distinct)
    naming: list[int]
    writes: Compiled
    #: what follows the bucket's name in its key (``BUCKET_ENDS``)
    end: bytes = b""

    def names(self, atoms: Sequence[bytes]) -> set[bytes]:
        """The buckets a clone of ``atoms`` writes to."""
        return {self.prefix + atoms[i][:BUCKET_CHARS] + self.end for i in self.naming}


class Template:
    """The template keyspace, ready to be written as any number of clones.

    The buckets (``BUCKETED``: graph entries, lookup records, meetings, graph facts, person
    states, short explain logs, redirects, absorbed persons) are not written as keys: every
    clone writes its entries into the buckets its atoms name (``buckets``), and the value set
    is one key all clones share (``shared``).
    """

    def __init__(
        self,
        records: list[KeyRecord],
        prefix: str,
        people: int,
        live: Sequence[bytes] | None = None,
    ) -> None:
        self.records = records
        self.prefix = prefix
        self.people = people
        self.atoms = atoms_of(records, prefix)
        index = {atom: i for i, atom in enumerate(self.atoms)}
        self.shared = [r for r in records if r.category == "values"]
        self.own = [r for r in records if r.category != "values" and not r.entries]
        self.writes = compile_commands((c for r in self.own for c in r.commands), index)
        # Entries of buckets: the hash of each is split into two more atoms, bucket and field.
        bucketed = [r for r in records if r.entries]
        self.split = list(dict.fromkeys(index[e.atom] for r in bucketed for e in r.entries))
        half = {atom: len(self.atoms) + 2 * n for n, atom in enumerate(self.split)}
        lengths = [len(atom) for atom in self.halved(self.atoms)]
        self.buckets: dict[str, Buckets] = {}
        for code in dict.fromkeys(r.category for r in bucketed):
            group = [r for r in bucketed if r.category == code]
            end = BUCKET_ENDS.get(code, b"")
            prefixes = {_bucket_of(code, r.key)[0] for r in group}
            if len(prefixes) != 1:
                raise ValueError(f"{code} buckets under several prefixes: {sorted(prefixes)}")
            bucket_prefix = prefixes.pop()
            commands: list[list[list[Piece]]] = []
            for r in group:
                for e in r.entries:
                    head = half[index[e.atom]]
                    field: list[Piece] = [e.head, head, head + 1] if e.whole else [e.head, head + 1]
                    value = [e.mark, *_pieces(e.holder + e.rest, index)]
                    commands.append([[b"HSET"], [bucket_prefix, head, end], field, value])
            for r in group:
                pad = _pad_of(r)
                if pad is not None:
                    bucket: list[Piece] = [bucket_prefix, half[index[r.entries[0].atom]], end]
                    commands += [[[b"HSET"], bucket, [_PAD], [pad]], [[b"HDEL"], bucket, [_PAD]]]
            entries = [e for r in group for e in r.entries]
            self.buckets[code] = Buckets(
                code,
                bucket_prefix,
                entries,
                list(dict.fromkeys(index[e.atom] for e in entries)),
                compile_pieces(commands, lengths),
                end,
            )
        #: the graph entries (one per identifier)
        self.entries = self.buckets["graph"].entries if "graph" in self.buckets else []
        self.shared_writes = compile_commands((c for r in self.shared for c in r.commands), index)
        self.key_names = [compile_commands([[r.key]], index) for r in self.own]
        for record, name in zip(self.own, self.key_names, strict=True):
            if not name.slots:
                raise ValueError(f"{record.key!r} would be the same key in every clone")
        batches = [self.own[i : i + 500] for i in range(0, len(self.own), 500)]
        self.unlinks = compile_commands(
            ([b"UNLINK", *(r.key for r in batch)] for batch in batches), index
        )
        self.by_length: dict[int, list[int]] = defaultdict(list)
        for i, atom in enumerate(self.atoms):
            self.by_length[len(atom)].append(i)
        # Live persons (a state, not merged away: 'v<version>:<state>') and what each owns.
        if live is None:
            states = self.buckets["state"].entries if "state" in self.buckets else []
            live = [e.atom for e in states if e.mark == b"v" and person_value(e.value)[2]]
        self.live = list(live)
        self.persons = {person: n for n, person in enumerate(live)}
        self.owner_of = [self.persons.get(r.owner, -1) if r.owner else -1 for r in self.own]
        #: bucketed key type -> entries each live person owns, and their bytes (``size``)
        self.entries_of: dict[str, list[int]] = {}
        self.sizes_of: dict[str, list[int]] = {}
        for code, kept in self.buckets.items():
            counts = self.entries_of[code] = [0] * len(live)
            sizes = self.sizes_of[code] = [0] * len(live)
            for entry in kept.entries:
                n = self.persons.get(entry.owner, -1) if entry.owner else -1
                if n >= 0:
                    counts[n] += 1
                    sizes[n] += entry.size
        self.identifiers = self.entries_of.get("graph", [0] * len(live))
        self.customers = [
            self.persons[member]
            for r in self.shared
            for member in r.commands[0][3::2]
            if member in self.persons
        ]
        self.counts = Counter(r.category for r in self.own)
        for code, kept in self.buckets.items():
            self.counts[code] += len(kept.entries)
        self.counts["values"] = len(self.customers)

    def fresh_atoms(self, seed: int) -> list[bytes]:
        """Random person ids and hashes of clone ``seed``, each as long as the one it replaces.

        The same seed gives the same ids, so a clone's keys can be named again to measure or
        delete them.
        """
        rng = random.Random(seed)
        out: list[bytes] = [b""] * len(self.atoms)
        for length, positions in self.by_length.items():
            need = length * len(positions)
            text = base64.urlsafe_b64encode(rng.randbytes(need * 3 // 4 + 3))
            for n, i in enumerate(positions):
                out[i] = text[n * length : (n + 1) * length]
        return out

    def keys(self, atoms: Sequence[bytes]) -> list[bytes]:
        """The key names of one clone (but the buckets)."""
        return [name.render(atoms)[:-2].split(b"\r\n", 2)[2] for name in self.key_names]

    def halved(self, atoms: Sequence[bytes]) -> list[bytes]:
        """``atoms`` and, for the buckets' writes, the bucket and field part of each hash that
        names a bucket."""
        halves = (
            part for i in self.split for part in (atoms[i][:BUCKET_CHARS], atoms[i][BUCKET_CHARS:])
        )
        return [*atoms, *halves]

    def bucket_names(self, atoms: Sequence[bytes]) -> dict[str, set[bytes]]:
        """The buckets one clone writes to, by key type."""
        return {code: group.names(atoms) for code, group in self.buckets.items()}

    def send(self, pipe: Pipe, atoms: Sequence[bytes]) -> int:
        """Write the clone of ``atoms``; how many commands that took."""
        pipe.send(self.writes.render(atoms), self.writes.commands)
        commands = self.writes.commands + self.shared_writes.commands
        if self.buckets:
            halved = self.halved(atoms)
            for group in self.buckets.values():
                pipe.send(group.writes.render(halved), group.writes.commands)
                commands += group.writes.commands
        pipe.send(self.shared_writes.render(atoms), self.shared_writes.commands)
        return commands


# --------------------------------------------------------------------------------------------
# Writing: one pipelined connection, replies counted on a reader thread
# --------------------------------------------------------------------------------------------


class Pipe:
    """Streams RESP to Redis and counts its replies (all one line) as they come back."""

    #: Commands sent but not answered yet, at most (keeps the server's output buffer small).
    MAX_IN_FLIGHT = 100_000

    def __init__(self, url: str) -> None:
        parts = urlparse(url)
        self._sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sent = 0
        self.replies = 0
        self.errors: list[bytes] = []
        self.bytes_sent = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        hello: list[list[bytes]] = []
        if parts.password:
            hello.append(
                [b"AUTH", *([_b(parts.username)] if parts.username else []), _b(parts.password)]
            )
        db = parts.path.strip("/")
        if db:
            hello.append([b"SELECT", db.encode()])
        if hello:
            self.send(compile_commands(hello, {}).render([]), len(hello))
            self.drain()

    def _read(self) -> None:
        line_start = True
        while True:
            try:
                chunk = self._sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self.errors.append(b"connection closed")
                    self._cond.notify_all()
                return
            if (line_start and chunk[:1] == b"-") or b"\n-" in chunk:
                text = (b"\n" + chunk) if line_start else chunk
                self.errors += [line for line in text.split(b"\n") if line.startswith(b"-")][:5]
            line_start = chunk.endswith(b"\n")
            with self._cond:
                self.replies += chunk.count(b"\n")
                self._cond.notify_all()

    def send(self, data: bytes, commands: int) -> None:
        """Send ``commands`` commands; waits while too many are unanswered."""
        with self._cond:
            while self.sent - self.replies > self.MAX_IN_FLIGHT and not self.errors:
                self._cond.wait(1.0)
            self.sent += commands
        self._sock.sendall(data)
        self.bytes_sent += len(data)

    def drain(self) -> None:
        """Wait for every reply; raise if Redis refused any command."""
        with self._cond:
            while self.replies < self.sent and not self.errors:
                self._cond.wait(1.0)
        if self.errors:
            raise RuntimeError(f"Redis refused commands: {self.errors[:3]}")

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._sock.close()


@contextmanager
def private_redis(config: Sequence[str] = ()) -> Iterator[str]:
    """A throwaway ``redis-server`` without persistence on a free port; yields its URL."""
    from bestand.stack import free_port
    from bestand.stack.redis import MEMORY_OPTIONS

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        command = [
            "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", folder, "--logfile", str(Path(folder) / "redis.log"),
            *MEMORY_OPTIONS, *config,
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server {' '.join(command)} did not start"
                        ) from None
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

_INFO_FIELDS = (
    "used_memory",
    "used_memory_dataset",
    "used_memory_overhead",
    "used_memory_rss",
    "allocator_allocated",
    "allocator_active",
    "allocator_resident",
    "mem_fragmentation_ratio",
)


def memory_info(client: redis.Redis) -> dict[str, float]:
    """The ``INFO memory`` figures we report, plus the key counts of db 0."""
    info = client.info("memory")
    out = {name: float(info[name]) for name in _INFO_FIELDS if name in info}
    keyspace = client.info("keyspace")
    db = client.connection_pool.connection_kwargs.get("db", 0)
    stats = keyspace.get(f"db{db}", {})
    out["keys"] = float(stats.get("keys", 0))
    out["expires"] = float(stats.get("expires", 0))
    return out


def settle(client: redis.Redis, timeout: float = 300.0) -> None:
    """Wait until Redis has freed what UNLINK handed to its background thread."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(client.info("memory").get("lazyfree_pending_objects", 0)) == 0:
            return
        time.sleep(0.2)


def finish_rehash(pipe: Pipe, keys: int) -> None:
    """Finish a rehash of the keyspace's hash table that the load left under way.

    Redis doubles the table when the keys outnumber its slots and moves the old slots over
    one per key lookup; an idle Redis 7.0 kept both tables for seconds (2 MB more at 262,145
    keys), which a live store's traffic frees soon, so ``used_memory`` right after a load
    can count a table that does not last. A lookup of a missing key moves at least one old
    slot, and the old table has fewer slots than there are ``keys``.
    """
    old = 1 << max(0, (keys - 1).bit_length() - 1)
    chunk = min(old, 10_000)
    lookups = b"*2\r\n$6\r\nEXISTS\r\n$1\r\n~\r\n" * chunk
    for _ in range(-(-old // chunk)):
        pipe.send(lookups, chunk)
    pipe.drain()


def prefix_in_use(client: redis.Redis, prefix: str) -> bool:
    """Whether any key starts with ``prefix:``."""
    cursor = 0
    while True:
        cursor, found = client.scan(cursor, match=f"{prefix}:*", count=10000)
        if found:
            return True
        if cursor == 0:
            return False


def usage(client: redis.Redis, keys: Sequence[bytes]) -> tuple[list[int], list[str]]:
    """``MEMORY USAGE key SAMPLES 0`` and ``OBJECT ENCODING`` of every key."""
    sizes: list[int] = []
    encodings: list[str] = []
    for start in range(0, len(keys), 5000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + 5000]:
            pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")  # type: ignore[no-untyped-call]
            pipe.execute_command("OBJECT", "ENCODING", key)  # type: ignore[no-untyped-call]
        replies = pipe.execute()
        for size, encoding in zip(replies[0::2], replies[1::2], strict=True):
            if size is None:  # a dedupe marker whose remaining TTL ran out during the load
                sizes.append(0)
                encodings.append("expired")
                continue
            sizes.append(int(size))
            encodings.append(encoding.decode() if isinstance(encoding, bytes) else str(encoding))
    return sizes, encodings


def progress(text: str) -> None:
    """One updating status line on stderr."""
    sys.stderr.write(f"\r{text}\033[K")
    sys.stderr.flush()


@dataclass
class Measurement:
    """What one load of a population cost in Redis."""

    name: str
    clones: int
    people: int
    persons: int
    identifiers: int
    lookup_records: int
    #: explain logs kept short, as fields of log buckets (the longer ones are lists)
    short_logs: int
    #: bucketed key type -> fields of its buckets (all clones')
    fields: dict[str, int]
    keys: int
    load_seconds: float
    commands: int
    bytes_sent: int
    before: dict[str, float]
    after: dict[str, float]
    #: category -> (keys, estimated bytes, min and max bytes per measured clone); the buckets
    #: (``BUCKETED``), which clones share: every one measured, an even share per clone as min
    #: and max
    categories: dict[str, tuple[int, float, int, int]]
    encodings: dict[str, dict[str, int]]
    fit: tuple[float, float, float]  # a, b, r2 (MEMORY USAGE plus keyspace overhead per key)
    measured_clones: list[int]

    @property
    def delta(self) -> float:
        return self.after["used_memory"] - self.before["used_memory"]

    @property
    def usage_total(self) -> float:
        return sum(total for _, total, _, _ in self.categories.values())

    def per(self, code: str) -> tuple[float, float]:
        """Bytes of one key type per person and per identifier."""
        total = self.categories.get(code, (0, 0.0, 0, 0))[1]
        return total / self.persons, total / self.identifiers

    @property
    def split(self) -> tuple[float, float]:
        """(a, b): bytes of per-person keys per person, of per-identifier keys per identifier."""
        per_id = sum(t for c, (_, t, _, _) in self.categories.items() if c in PER_IDENTIFIER)
        return (self.usage_total - per_id) / self.persons, per_id / self.identifiers


def load_and_measure(
    template: Template,
    url: str,
    clones: int,
    *,
    name: str,
    seed: int,
    measure_clones: int,
    keep: bool = False,
    thresholds: dict[str, Any] | None = None,
) -> Measurement:
    """Write ``clones`` clones of ``template``, measure them, delete them (unless ``keep``);
    ``thresholds``: filled with what the value bands' sample costs and how far it is off."""
    client = redis.Redis.from_url(url)
    settle(client)
    before = memory_info(client)
    pipe = Pipe(url)
    started = time.perf_counter()
    commands = 0
    written = 0
    try:
        buckets: dict[str, set[bytes]] = defaultdict(set)
        for clone in range(clones):
            atoms = template.fresh_atoms(seed + clone)
            commands += template.send(pipe, atoms)
            for code, names in template.bucket_names(atoms).items():
                buckets[code] |= names
            written = clone + 1
            if clone % 5 == 4 or written == clones:
                elapsed = time.perf_counter() - started
                people = written * template.people
                progress(
                    f"{name}: {people:,} of {clones * template.people:,} people written, "
                    f"{people / elapsed:,.0f} people/s"
                )
        pipe.drain()
        seconds = time.perf_counter() - started
        sent = pipe.bytes_sent
        finish_rehash(pipe, client.dbsize())
        pipe.close()  # its query buffer is not ours to count
        progress(f"{name}: {clones * template.people:,} people in {seconds:.0f} s; measuring")
        time.sleep(1.0)
        after = memory_info(client)
        chosen = sorted(
            {round(i * (clones - 1) / max(1, measure_clones - 1)) for i in range(measure_clones)}
        )
        chosen = [c for c in chosen if c < clones]
        per_clone: list[list[int]] = []
        encodings: dict[str, Counter[str]] = defaultdict(Counter)
        for clone in chosen:
            sizes, kinds = usage(client, template.keys(template.fresh_atoms(seed + clone)))
            per_clone.append(sizes)
            for record, kind in zip(template.own, kinds, strict=True):
                encodings[record.category][kind] += 1
        # Every bucket: one holds entries of every clone, none is a clone's own.
        bucket_sizes: dict[str, list[int]] = {}
        for code, names in buckets.items():
            bucket_sizes[code], bucket_kinds = usage(client, sorted(names))
            encodings[code].update(bucket_kinds)
        values_key = f"{template.prefix}:values".encode()
        values_sizes, values_kinds = (
            usage(client, [values_key]) if template.shared else ([0], ["-"])
        )
        encodings["values"][values_kinds[0]] += 1
        if thresholds is not None:
            progress(f"{name}: value thresholds, a sample and all persons")
            thresholds.update(asyncio.run(value_sample(url, template.prefix)))
        return _summarize(
            template, name, clones, chosen, per_clone, bucket_sizes, values_sizes[0],
            encodings, before, after, seconds, commands, sent,
        )  # fmt: skip
    finally:
        pipe.close()
        if not keep:
            delete_clones(template, url, written, seed)
        client.close()


async def value_sample(url: str, prefix: str) -> dict[str, Any]:
    """The value bands' thresholds as the API reads them (``store/values.py``: a sample of the
    persons' states) against those of every person: the sample's time, and where each of its
    thresholds ranks among all customers (the rank it stands for, as a share)."""
    client = aioredis.Redis.from_url(url)
    keys = Keys(prefix)
    try:
        started = time.perf_counter()
        sample, read = await sample_values(client, keys)
        seconds = time.perf_counter() - started
        every, persons = await sample_values(client, keys, 10**12)
    finally:
        await client.aclose()
    ordered = sorted(every, reverse=True)
    got = thresholds_of(sample)
    shares = {"top10": 0.1, "top30": 0.3, "q80": 0.2, "q60": 0.4, "q40": 0.6, "q20": 0.8}
    marks = {"top10": got.top10_cents, "top30": got.top30_cents}
    marks |= dict(zip(("q20", "q40", "q60", "q80"), got.quintiles, strict=False))
    off = {
        name: round(sum(1 for v in ordered if v >= value) / len(ordered) - shares[name], 4)
        for name, value in marks.items()
        if value is not None
    }
    return {
        "sample_persons": read,
        "sample_customers": len(sample),
        "sample_seconds": round(seconds, 3),
        "persons": persons,
        "customers": len(every),
        "share_above_minus_target": off,
    }


def delete_clones(template: Template, url: str, clones: int, seed: int) -> None:
    """UNLINK every key of clones ``0..clones-1``, the buckets they wrote to and the shared
    value set."""
    pipe = Pipe(url)
    try:
        buckets: set[bytes] = set()
        for clone in range(clones):
            atoms = template.fresh_atoms(seed + clone)
            pipe.send(template.unlinks.render(atoms), template.unlinks.commands)
            for written in template.bucket_names(atoms).values():
                buckets |= written
            if clone % 20 == 19:
                progress(f"deleting: {clone + 1:,} of {clones:,} clones")
        names = sorted(buckets)
        shared = [[b"UNLINK", *names[i : i + 500]] for i in range(0, len(names), 500)] + [
            [b"UNLINK", f"{template.prefix}:values".encode()]
        ]
        pipe.send(compile_commands(shared, {}).render([]), len(shared))
        pipe.drain()
    finally:
        pipe.close()
    client = redis.Redis.from_url(url)
    settle(client)
    client.close()
    progress("")


def _summarize(
    template: Template,
    name: str,
    clones: int,
    chosen: list[int],
    per_clone: list[list[int]],
    bucket_sizes: dict[str, list[int]],
    values_bytes: int,
    encodings: dict[str, Counter[str]],
    before: dict[str, float],
    after: dict[str, float],
    seconds: float,
    commands: int,
    bytes_sent: int,
) -> Measurement:
    sums: dict[str, list[int]] = {code: [0] * len(chosen) for code, _, _ in CATEGORIES}
    for n, sizes in enumerate(per_clone):
        for record, size in zip(template.own, sizes, strict=True):
            sums[record.category][n] += size
    categories: dict[str, tuple[int, float, int, int]] = {}
    for code, _, _ in CATEGORIES:
        keys = template.counts.get(code, 0) * clones
        if code == "values":
            categories[code] = (
                1 if template.shared else 0,
                float(values_bytes),
                values_bytes,
                values_bytes,
            )
            continue
        if code in bucket_sizes:  # the buckets are shared: an even share per clone
            total = sum(bucket_sizes[code])
            share = total // max(1, clones)
            categories[code] = (len(bucket_sizes[code]), float(total), share, share)
            continue
        totals = sums[code]
        mean = sum(totals) / len(totals) if totals else 0.0
        categories[code] = (keys, mean * clones, min(totals, default=0), max(totals, default=0))
    own_keys = len(template.own) * clones
    measurement = Measurement(
        name=name,
        clones=clones,
        people=template.people * clones,
        persons=len(template.persons) * clones,
        identifiers=len(template.entries) * clones,
        lookup_records=template.counts.get("lookup", 0) * clones,
        short_logs=template.counts.get("explain", 0) * clones,
        fields={code: template.counts.get(code, 0) * clones for code in template.buckets},
        keys=own_keys + sum(map(len, bucket_sizes.values())) + (1 if template.shared else 0),
        load_seconds=seconds,
        commands=commands,
        bytes_sent=bytes_sent,
        before=before,
        after=after,
        categories=categories,
        encodings={code: dict(kinds) for code, kinds in encodings.items()},
        fit=(0.0, 0.0, 0.0),
        measured_clones=chosen,
    )
    # Per-person sums for the fit: every key's MEMORY USAGE plus its share of what
    # MEMORY USAGE leaves out (keyspace tables, expires), the value set per customer, the
    # buckets (with their share) by the bytes of their entries (field and value): graph
    # entries, lookup records, meetings, graph facts, person states, short explain logs,
    # redirects and absorbed persons to their owners.
    overhead = max(0.0, measurement.delta - measurement.usage_total) / max(1, measurement.keys)
    value_share = values_bytes / max(1, len(template.customers) * clones)
    byte_shares = {
        code: (sum(sizes) + overhead * len(sizes))
        / max(1, sum(e.size for e in template.buckets[code].entries) * clones)
        for code, sizes in bucket_sizes.items()
    }
    xs: list[float] = []
    ys: list[float] = []
    for sizes in per_clone:
        person_bytes = [0.0] * len(template.persons)
        for owner, size in zip(template.owner_of, sizes, strict=True):
            if owner >= 0:
                person_bytes[owner] += size + overhead
        for owner in template.customers:
            person_bytes[owner] += value_share
        for code, per_byte in byte_shares.items():
            for owner, size in enumerate(template.sizes_of[code]):
                person_bytes[owner] += size * per_byte
        xs += [float(n) for n in template.identifiers]
        ys += person_bytes
    measurement.fit = _least_squares(xs, ys)
    return measurement


def _least_squares(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Intercept, slope and R² of y = a + b x."""
    n = len(xs)
    if n < 2:
        return 0.0, 0.0, 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx if sxx else 0.0
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 0.0
    return my - slope * mx, slope, r2


# --------------------------------------------------------------------------------------------
# The template
# --------------------------------------------------------------------------------------------


@dataclass
class TemplateInfo:
    """How the template shop was made."""

    people: int
    seed: int
    events: int
    emulate_seconds: float
    dedupe: str
    event_ids: str = "simulated"
    topic_messages: int = 0  # the explain topic's (Kafka), for the template's history
    topic_bytes: int = 0


def build_template(
    prefix: str,
    people: int,
    seed: int,
    limits: Limits,
    dedupe: str,
    ttl: int | None = None,
    event_ids: str = "simulated",
) -> tuple[Template, TemplateInfo, MemoryRedis]:
    """Simulate a shop of ``people`` and run it through the worker's handlers in process.

    ``event_ids``: ``simulated`` keeps the simulator's ids (``ev-0005418``, 10 characters);
    ``uuid`` gives every event a UUID (36 characters), as many shops' systems send them: an
    event id is part of every explain entry, dedupe marker and receipt."""
    started = time.perf_counter()
    shop = simulate(persons=people - 1, seed=seed, now=SIM_NOW)  # plus the demo's Jana
    if event_ids == "uuid":
        rng = random.Random(seed)
        for event in shop.events:
            event["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    settings = settings_for(prefix)
    if ttl is not None:
        settings = settings.model_copy(update={"dedupe_ttl_seconds": ttl})
    store = MemoryRedis(limits)
    client = MemoryClient(store)
    done = 0

    def tick(event: dict[str, Any]) -> None:
        nonlocal done
        store.clock = _epoch(event)
        done += 1
        if done % 2000 == 0:
            rate = done / (time.perf_counter() - started)
            progress(f"template: {done:,} of {len(shop.events):,} events, {rate:,.0f} events/s")

    outcome = asyncio.run(replay(shop.events, settings, client, tick))
    seconds = time.perf_counter() - started
    progress("")
    records = keyspace(store, prefix, dedupe=dedupe, now=int(SIM_NOW.timestamp()))
    info = TemplateInfo(
        len(shop.personas),
        seed,
        len(shop.events),
        seconds,
        dedupe,
        event_ids,
        outcome["explain topic messages"],
        outcome["explain topic bytes"],
    )
    return Template(records, prefix, len(shop.personas)), info, store


# --------------------------------------------------------------------------------------------
# Experiments: the same population in another format
# --------------------------------------------------------------------------------------------


def _lookup_per_person(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    """One lookup record per person, a field of the bucket its id names
    (``<p>:l:<person[:3]>``, field ``<person[3:]>``: the newest of the person's records
    without its person id); a lookup reads the identifier's graph entry first, then the
    person's record."""
    out: list[KeyRecord] = []
    newest: dict[bytes, Entry] = {}
    for r in records:
        if r.category != "lookup":
            out.append(r)
            continue
        for e in r.entries:
            held = newest.get(e.holder)
            if held is None or _record_version(e.value) > _record_version(held.value):
                newest[e.holder] = e
    buckets: dict[bytes, list[Entry]] = defaultdict(list)
    for person, e in newest.items():
        entry = Entry(b"", person, b"", e.rest.removeprefix(_SEP), e.owner)
        buckets[f"{prefix}:l:".encode() + person[:BUCKET_CHARS]].append(entry)
    out += [bucket_record(key, "lookup", entries) for key, entries in buckets.items()]
    return out


def _graph_buckets_merged(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    """Redirects, absorbed persons and short explain logs as fields of the person's facts
    bucket (``r:``, ``a:``, ``y:`` and the person id), an identifier's meetings as a field
    of its graph bucket (``+`` and its entry's field): fewer, fuller buckets."""
    into = {"redirect": ("facts", b"r:"), "absorbed": ("facts", b"a:"),
            "explain": ("facts", b"y:"), "met": ("graph", b"+")}  # fmt: skip
    codes = {"facts": b"k", "graph": b"i"}
    out: list[KeyRecord] = []
    buckets: dict[tuple[str, bytes], list[Entry]] = defaultdict(list)
    pads: dict[tuple[str, bytes], bytes | None] = {}
    for r in records:
        if r.category in into:
            target, head = into[r.category]
            for e in r.entries:
                moved = Entry(head + e.head, e.atom, e.holder, e.rest, e.owner, e.whole, e.mark)
                key = f"{prefix}:{{g}}:".encode() + codes[target] + b":" + e.atom[:BUCKET_CHARS]
                buckets[(target, key)].append(moved)
        elif r.category in codes:
            buckets[(r.category, r.key)].extend(r.entries)
            pads[(r.category, r.key)] = _pad_of(r)
        else:
            out.append(r)
    out += [
        bucket_record(key, target, entries, pads.get((target, key)))
        for (target, key), entries in buckets.items()
    ]
    return out


def _state_without_ids(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    """Every live person's state without ``ids`` (the graph facts hold the same), a field of
    its person bucket as before."""
    out = []
    for r in records:
        if r.category == "state":
            entries = []
            for e in r.entries:
                went, version, blob = person_value(e.value)
                if went is None and blob:
                    state = replace(load_state("", blob), ids=frozenset())
                    value = b"v%d:%s" % (version, dump_state(state))
                    e = _state_entry(e.atom, value, e.owner)
                entries.append(e)
            r = bucket_record(r.key, "state", entries, _pad_of(r))
        out.append(r)
    return out


def _logs(records: Sequence[KeyRecord]) -> Iterator[tuple[bytes, list[bytes], bytes | None]]:
    """Every explain log of the keyspace, short (a bucket's field) or long (a list): person,
    entries, owner."""
    for r in records:
        if r.category == "explain":
            for e in r.entries:
                yield e.atom, e.rest.split(_LOG_SEP), e.owner
        elif r.category == "explain_long":
            yield r.key.rsplit(b":", 1)[1], r.commands[0][2:], r.owner


def _with_logs(
    records: list[KeyRecord], prefix: str, change: Callable[[list[bytes]], list[bytes]]
) -> list[KeyRecord]:
    """The keyspace with every explain log's entries changed, each log kept as the scripts
    would keep it had its entries always been so: a field of its log bucket while at most
    ``LOG_INLINE`` bytes (and no entry holds ``\\x1e``), a list if longer, none if empty."""
    graph = f"{prefix}:{{g}}:".encode()
    buckets: dict[bytes, list[Entry]] = defaultdict(list)
    lists: list[KeyRecord] = []
    for person, entries, owner in _logs(records):
        kept = change(entries)
        if not kept:
            continue
        joined = _LOG_SEP.join(kept)
        if len(joined) <= LOG_INLINE and not any(_LOG_SEP in entry for entry in kept):
            entry = Entry(b"", person, b"", joined, owner, whole=True)
            buckets[graph + b"y:" + person[:BUCKET_CHARS]].append(entry)
        else:
            key = graph + b"x:" + person
            lists.append(KeyRecord(key, "explain_long", [[b"RPUSH", key, *kept]], owner))
    out = [r for r in records if r.category not in ("explain", "explain_long")]
    out += lists
    out += [bucket_record(key, "explain", entries) for key, entries in buckets.items()]
    return out


def _rule_codes(records: list[KeyRecord]) -> dict[str, str]:
    """A two-letter code for every rule text, the most frequent first."""
    rules = Counter(
        str(parse_entry(entry).get("r", ""))
        for _, entries, _ in _logs(records)
        for entry in entries
    )
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return {
        rule: letters[n // len(letters)] + letters[n % len(letters)]
        for n, (rule, _) in enumerate(rules.most_common())
    }


def _explain_compact(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    """Explain entries as ``k event at tokens rule via other`` with a code for the rule text."""
    codes = _rule_codes(records)

    def compact(entries: list[bytes]) -> list[bytes]:
        out = []
        for raw in entries:
            e = parse_entry(raw)
            parts = [
                e["k"][0], e["e"], str(e["at"]), ",".join(e.get("t", [])),
                codes[str(e.get("r", ""))], e.get("via") or "", e.get("o") or "",
            ]  # fmt: skip
            out.append(" ".join(parts).rstrip().encode())
        return out

    return _with_logs(records, prefix, compact)


def _explain_without_links(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    """Only merges, refusals and junk flags in the explain log (not ``new`` and ``link``)."""

    def without_links(entries: list[bytes]) -> list[bytes]:
        return [e for e in entries if parse_entry(e)["k"] not in ("new", "link")]

    return _with_logs(records, prefix, without_links)


def _dedupe_per_person(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    """A person's dedupe markers as fields of one hash (``<p>:d:{<person>}``: event -> marker),
    expiring with the longest TTL of them (one key per person instead of one per event)."""
    out: list[KeyRecord] = []
    markers: dict[bytes, list[tuple[bytes, bytes, bytes | None]]] = {}
    owners: dict[bytes, bytes | None] = {}
    for r in records:
        if r.category != "dedupe":
            out.append(r)
            continue
        head, _, event = r.key.rpartition(b":")
        command = r.commands[0]  # SET key value [EX ttl]
        ttl = command[4] if len(command) > 4 else None
        markers.setdefault(head, []).append((event, command[2], ttl))
        owners[head] = r.owner
    for head, held in markers.items():
        fields = [item for event, value, _ in held for item in (event, value)]
        commands = [[b"HSET", head, *fields]]
        ttls = [int(ttl) for _, _, ttl in held if ttl is not None]
        if ttls:
            commands.append([b"EXPIRE", head, b"%d" % max(ttls)])
        out.append(KeyRecord(head, "dedupe", commands, owners[head]))
    return out


def _combined(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    for step in (_state_without_ids, _explain_compact):
        records = step(records, prefix)
    return records


def _combined_per_person(records: list[KeyRecord], prefix: str) -> list[KeyRecord]:
    records = _lookup_per_person(records, prefix)
    for step in (_state_without_ids, _explain_without_links):
        records = step(records, prefix)
    return records


@dataclass(frozen=True)
class Experiment:
    """Another format of the same keys, and what it would take."""

    name: str
    description: str
    change: Callable[[list[KeyRecord], str], list[KeyRecord]] | None = None
    config: tuple[str, ...] = ()  # redis-server options (needs --private-redis)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "lookup-per-person",
            "one lookup record per person (a field of <p>:l:<person[:3]>); a lookup reads "
            "the graph entry, then the record",
            _lookup_per_person,
        ),
        # Gone: "state-string" (a person's state as a string key '<version> <state>'): a
        # state is that one value now, a field of its person bucket, and has no key at all.
        # "state-listpack" (hash-max-listpack-value 2048) became "listpack-64": the baseline
        # runs with 2048 already (MEMORY_OPTIONS), so only the other way round measures it.
        Experiment(
            "listpack-64",
            "Redis's default hash-max-listpack-value 64 instead of the stack's 2048: buckets "
            "with a longer value (graph facts, person states, explain logs, lookup records) "
            "become hash tables (server setting; the loss is what 2048 saves)",
            None,
            ("--hash-max-listpack-value", "64"),
        ),
        Experiment(
            "graph-buckets-merged",
            "redirects, absorbed persons and short explain logs in the facts buckets, meetings "
            "in the graph buckets (a field prefix each)",
            _graph_buckets_merged,
        ),
        Experiment(
            "state-no-ids",
            "person state without 'ids' (the graph facts hold them)",
            _state_without_ids,
        ),
        Experiment(
            "explain-compact",
            "explain entries with a 2-letter code for every rule text, space-separated",
            _explain_compact,
        ),
        Experiment(
            "explain-no-links",
            "explain log keeps merges, refusals and junk; 'new' and 'link' are left out",
            _explain_without_links,
        ),
        Experiment(
            "dedupe-per-person",
            "a person's dedupe markers in one hash (event -> marker) instead of a key each",
            _dedupe_per_person,
        ),
        Experiment(
            "combined",
            "state-no-ids + explain-compact",
            _combined,
        ),
        Experiment(
            "combined-per-person",
            "lookup-per-person + state-no-ids + explain-no-links",
            _combined_per_person,
        ),
    )
}


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

GOAL = (300.0, 120.0)


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f}"


def report_rows(m: Measurement) -> list[dict[str, Any]]:
    """One row per key type."""
    rows = []
    total = m.usage_total
    for code, label, per_id in CATEGORIES:
        keys, size, low, high = m.categories[code]
        per_person, per_identifier = m.per(code)
        rows.append(
            {
                "type": code,
                "key": label,
                "scales_with": "identifiers" if per_id else "persons",
                "keys": keys,
                "bytes": round(size),
                "share": size / total if total else 0.0,
                "bytes_per_key": size / keys if keys else 0.0,
                "bytes_per_person": per_person,
                "bytes_per_identifier": per_identifier,
                "encodings": m.encodings.get(code, {}),
                "spread_between_clones": [low, high],
            }
        )
    return rows


def as_json(m: Measurement, template: TemplateInfo) -> dict[str, Any]:
    """Everything about one measurement, for ``--json``."""
    a, b = m.split
    fa, fb, r2 = m.fit
    not_counted = m.delta - m.usage_total
    return {
        "name": m.name,
        "people": m.people,
        "persons": m.persons,
        "identifiers": m.identifiers,
        "identifiers_per_person": m.identifiers / m.persons,
        "lookup_records": m.lookup_records,
        "short_logs": m.short_logs,
        "bucket_fields": m.fields,
        "keys": m.keys,
        "clones": m.clones,
        "template": template.__dict__,
        "load": {
            "seconds": m.load_seconds,
            "people_per_second": m.people / m.load_seconds,
            "commands": m.commands,
            "bytes_sent": m.bytes_sent,
        },
        "breakdown": report_rows(m),
        "totals": {
            "memory_usage_sum": round(m.usage_total),
            "used_memory_delta": round(m.delta),
            "not_in_memory_usage": round(not_counted),
            "not_in_memory_usage_per_key": not_counted / m.keys,
            "bytes_per_person": m.delta / m.persons,
            "bytes_per_person_of_the_shop": m.delta / m.people,
        },
        "model": {
            "by_key_type": {"a_per_person": a, "b_per_identifier": b, "counts": "MEMORY USAGE"},
            "least_squares": {
                "a_per_person": fa,
                "b_per_identifier": fb,
                "r2": r2,
                "counts": "MEMORY USAGE plus each key's share of the rest of the used_memory delta",
            },
            "goal": {"a_per_person": GOAL[0], "b_per_identifier": GOAL[1]},
        },
        "info_memory": {
            "before": m.before,
            "after": m.after,
            "delta": {k: m.after[k] - m.before[k] for k in m.after if k in m.before},
        },
        "measured_clones": m.measured_clones,
    }


#: Bucketed key types reported like graph entries: code, what, what a field is.
_MORE_BUCKETS = (
    ("met", "met sets", "identifier's set"),
    ("facts", "graph facts", "person's facts"),
    ("state", "person states", "state (live or merged away)"),
    ("redirect", "redirects", "redirect"),
    ("absorbed", "absorbed sets", "person's set"),
)


def print_report(m: Measurement, template: TemplateInfo) -> None:
    """The measurement as a table on stdout."""
    a, b = m.split
    fa, fb, r2 = m.fit
    print(
        f"\n{m.name}: {m.people:,} people = {m.clones:,} clones of a {template.people:,}-person "
        f"simulated shop (seed {template.seed}, {template.events:,} events; dedupe: "
        f"{template.dedupe}; event ids: {template.event_ids})"
    )
    print(
        f"  persons {m.persons:,} (live, after merges)   identifiers {m.identifiers:,} "
        f"(graph entries, {m.identifiers / m.persons:.2f} per person)   lookup records "
        f"{m.lookup_records:,}   keys {m.keys:,}"
    )
    print(
        f"  written in {m.load_seconds:.0f} s ({m.people / m.load_seconds:,.0f} people/s, "
        f"{m.commands / m.load_seconds:,.0f} commands/s, {m.bytes_sent / 1e6:,.0f} MB of RESP)"
    )
    header = (
        f"  {'key type':44} {'keys':>11} {'MB':>8} {'share':>6} {'B/key':>6} "
        f"{'B/person':>8} {'B/ident':>8}  encoding"
    )
    print("\n" + header)
    for row in report_rows(m):
        encodings = ", ".join(f"{k} {v}" for k, v in sorted(row["encodings"].items()))
        print(
            f"  {row['key']:44} {row['keys']:>11,} {_mb(row['bytes']):>8} "
            f"{row['share']:>6.1%} {row['bytes_per_key']:>6.0f} {row['bytes_per_person']:>8.1f} "
            f"{row['bytes_per_identifier']:>8.1f}  {encodings}"
        )
    print(f"  {'sum of MEMORY USAGE':44} {m.keys:>11,} {_mb(m.usage_total):>8}")
    print(f"  {'INFO used_memory after - before':44} {'':>11} {_mb(m.delta):>8}")
    rest = m.delta - m.usage_total
    print(
        f"  {'not in MEMORY USAGE (keyspace tables, ...)':44} {'':>11} {_mb(rest):>8} "
        f"{'':>6} {rest / m.keys:>6.1f}"
    )
    buckets, graph_bytes, _, _ = m.categories["graph"]
    print(
        f"  graph entries: {m.identifiers:,} fields of {buckets:,} buckets (MEMORY USAGE of every "
        f"bucket), {graph_bytes / max(1, m.identifiers):.1f} B per entry"
    )
    buckets, lookup_bytes, _, _ = m.categories["lookup"]
    print(
        f"  lookup records: {m.lookup_records:,} fields of {buckets:,} buckets (MEMORY USAGE of "
        f"every bucket), {lookup_bytes / max(1, m.lookup_records):.1f} B per record"
    )
    buckets, log_bytes, _, _ = m.categories["explain"]
    lists, list_bytes, _, _ = m.categories["explain_long"]
    print(
        f"  explain logs: {m.short_logs:,} fields of {buckets:,} buckets (MEMORY USAGE of every "
        f"bucket), {log_bytes / max(1, m.short_logs):.1f} B per log; {lists:,} longer logs as "
        f"lists, {list_bytes / max(1, lists):,.0f} B per log"
    )
    for code, what, each in _MORE_BUCKETS:
        buckets, size, _, _ = m.categories[code]
        fields = m.fields.get(code, 0)
        print(
            f"  {what}: {fields:,} fields of {buckets:,} buckets (MEMORY USAGE of every bucket), "
            f"{size / max(1, fields):.1f} B per {each}"
        )
    print(
        f"\n  bytes per person: {m.delta / m.persons:,.0f} (used_memory delta / live persons); "
        f"per person of the shop: {m.delta / m.people:,.0f}"
    )
    print("  model: total = persons x a + identifiers x b")
    print(
        f"    by key type (MEMORY USAGE):              a = {a:6.0f} B/person   "
        f"b = {b:5.0f} B/identifier"
    )
    print(
        f"    least squares per person (+ rest/key):   a = {fa:6.0f} B/person   "
        f"b = {fb:5.0f} B/identifier   (R² {r2:.2f})"
    )
    print(
        f"    goal:                                    a <= {GOAL[0]:4.0f}             "
        f"b <= {GOAL[1]:4.0f}"
    )
    print(f"\n  {'INFO memory':26} {'before':>16} {'after':>16} {'delta':>16}")
    for name in (*_INFO_FIELDS, "keys", "expires"):
        if name in m.after:
            low, high = m.before[name], m.after[name]
            fmt = "{:>16,.2f}" if name == "mem_fragmentation_ratio" else "{:>16,.0f}"
            print(f"  {name:26} {fmt.format(low)} {fmt.format(high)} {fmt.format(high - low)}")


def markdown(results: dict[str, Any]) -> str:
    """The JSON report as Markdown."""
    base = results["baseline"]
    lines = [
        f"# Redis memory at {base['people']:,} people",
        "",
        f"`{results['command']}` on {results['machine']}; Redis {results['redis']['version']}"
        f" ({'private instance' if results['redis']['private'] else 'shared instance'}).",
        "",
        f"{base['people']:,} people of a simulated shop ({base['clones']:,} clones of "
        f"{base['template']['people']:,} people, seed {base['template']['seed']}); "
        f"{base['persons']:,} live persons, {base['identifiers']:,} identifiers "
        f"({base['identifiers_per_person']:.2f} per person), {base['keys']:,} keys; dedupe "
        f"markers: {base['template']['dedupe']}.",
        "",
        "| key type | keys | MB | share | B/key | B/person | B/identifier | encoding |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in base["breakdown"]:
        encodings = ", ".join(f"{k} {v:,}" for k, v in sorted(row["encodings"].items()))
        lines.append(
            f"| `{row['key']}` | {row['keys']:,} | {_mb(row['bytes'])} | {row['share']:.1%} | "
            f"{row['bytes_per_key']:.0f} | {row['bytes_per_person']:.1f} | "
            f"{row['bytes_per_identifier']:.1f} | {encodings} |"
        )
    totals = base["totals"]
    model = base["model"]
    graph = next(row for row in base["breakdown"] if row["type"] == "graph")
    lookup = next(row for row in base["breakdown"] if row["type"] == "lookup")
    logs = next(row for row in base["breakdown"] if row["type"] == "explain")
    long_logs = next(row for row in base["breakdown"] if row["type"] == "explain_long")
    lines += [
        f"| sum of MEMORY USAGE | {base['keys']:,} | {_mb(totals['memory_usage_sum'])} | | | | | |",
        f"| INFO used_memory delta | | {_mb(totals['used_memory_delta'])} | | | | | |",
        "",
        f"Graph entries: {base['identifiers']:,} fields of {graph['keys']:,} buckets (`MEMORY "
        f"USAGE` of every bucket), {graph['bytes_per_identifier']:.1f} B per entry. Lookup "
        f"records: {base['lookup_records']:,} fields of {lookup['keys']:,} buckets, "
        f"{lookup['bytes'] / max(1, base['lookup_records']):.1f} B per record. Explain logs: "
        f"{base['short_logs']:,} fields of {logs['keys']:,} buckets, "
        f"{logs['bytes'] / max(1, base['short_logs']):.1f} B per log; {long_logs['keys']:,} "
        f"longer logs as lists, {long_logs['bytes_per_key']:,.0f} B per log."
        + "".join(
            f" {what.capitalize()}: {base['bucket_fields'].get(code, 0):,} fields of "
            f"{row['keys']:,} buckets, "
            f"{row['bytes'] / max(1, base['bucket_fields'].get(code, 0)):.1f} B per {each}."
            for code, what, each in _MORE_BUCKETS
            for row in base["breakdown"]
            if row["type"] == code
        ),
        "",
        f"Bytes per live person: **{totals['bytes_per_person']:,.0f}** (used_memory delta).",
        "",
        "| model: persons × a + identifiers × b | a (B/person) | b (B/identifier) |",
        "|---|---:|---:|",
        f"| by key type (MEMORY USAGE) | {model['by_key_type']['a_per_person']:.0f} | "
        f"{model['by_key_type']['b_per_identifier']:.0f} |",
        f"| least squares per person (R² {model['least_squares']['r2']:.2f}) | "
        f"{model['least_squares']['a_per_person']:.0f} | "
        f"{model['least_squares']['b_per_identifier']:.0f} |",
        f"| goal | {GOAL[0]:.0f} | {GOAL[1]:.0f} |",
        "",
        "| INFO memory | before | after | delta |",
        "|---|---:|---:|---:|",
    ]
    info = base["info_memory"]
    for name, value in info["after"].items():
        lines.append(
            f"| {name} | {info['before'][name]:,.2f} | {value:,.2f} | {info['delta'][name]:,.2f} |"
        )
    if results.get("experiments"):
        lines += [
            "",
            "## Experiments",
            "",
            "| experiment | what changes | used_memory delta MB | saving | B/person saved | "
            "a | b |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for exp in results["experiments"]:
            lines.append(
                f"| `{exp['name']}` | {exp['description']} | {_mb(exp['used_memory_delta'])} | "
                f"{exp['saving_share']:.1%} | {exp['saving_per_person']:.0f} | "
                f"{exp['a_per_person']:.0f} | {exp['b_per_identifier']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def _experiment_json(
    experiment: Experiment, m: Measurement, base: Measurement, info: TemplateInfo
) -> dict[str, Any]:
    saved = base.usage_total - m.usage_total
    a, b = m.split
    return {
        "name": experiment.name,
        "description": experiment.description,
        "server_options": list(experiment.config),
        "memory_usage_sum": round(m.usage_total),
        "used_memory_delta": round(m.delta),
        "saving_bytes": round(saved),
        "saving_share": saved / base.usage_total,
        "saving_per_person": saved / base.persons,
        "saving_used_memory_delta": round(base.delta - m.delta),
        "bytes_per_person": m.usage_total / m.persons,
        "a_per_person": a,
        "b_per_identifier": b,
        "least_squares": {"a_per_person": m.fit[0], "b_per_identifier": m.fit[1], "r2": m.fit[2]},
        "detail": as_json(m, info),
    }


def print_experiments(base: Measurement, experiments: Sequence[dict[str, Any]]) -> None:
    """Savings of every experiment against the baseline."""
    a, b = base.split
    print("\nexperiments (same population; saving in MEMORY USAGE, used_memory delta as a check)")
    print(
        f"  {'experiment':22} {'MB':>8} {'saving':>7} {'B/person':>9} {'Δused MB':>9} "
        f"{'a':>6} {'b':>5}"
    )
    print(
        f"  {'baseline':22} {_mb(base.usage_total):>8} {'':>7} {'':>9} {'':>9} {a:>6.0f} {b:>5.0f}"
    )
    for e in experiments:
        print(
            f"  {e['name']:22} {_mb(e['memory_usage_sum']):>8} {e['saving_share']:>7.1%} "
            f"{e['saving_per_person']:>9.0f} {e['saving_used_memory_delta'] / 1e6:>9.1f} "
            f"{e['a_per_person']:>6.0f} {e['b_per_identifier']:>5.0f}"
        )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000, help="people of the shop")
    parser.add_argument("--template-persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prefix", default="M", help="key prefix (as long as production's 'b')")
    parser.add_argument("--redis-url", default=None, help="default: BESTAND_REDIS_URL")
    parser.add_argument(
        "--private-redis",
        action="store_true",
        help="start a throwaway redis-server without persistence instead",
    )
    parser.add_argument("--dedupe", choices=("window", "all"), default="window")
    parser.add_argument(
        "--event-ids",
        choices=("simulated", "uuid"),
        default="simulated",
        help="the simulator's short event ids, or a UUID each as many shops send",
    )
    parser.add_argument("--measure-clones", type=int, default=4)
    parser.add_argument(
        "--experiment", action="append", default=[], choices=[*EXPERIMENTS, "all"], metavar="NAME"
    )
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--verify-persons", type=int, default=60)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the keys in Redis")
    args = parser.parse_args()
    changed = [n for n, sha in script_digests().items() if sha not in PORTED_SCRIPTS[n]]
    if changed and not args.verify:
        print(
            f"warning: {', '.join(changed)}.lua changed since the ports were checked; run --verify",
            file=sys.stderr,
        )
    with _server(args) as url:
        if args.verify:
            sys.exit(0 if verify(url, args) else 1)
        run(url, args)


@contextmanager
def _server(args: argparse.Namespace, config: Sequence[str] = ()) -> Iterator[str]:
    if args.private_redis:
        with private_redis(config) as url:
            yield url
    else:
        yield args.redis_url or Settings().redis_url


def run(url: str, args: argparse.Namespace) -> None:
    client = redis.Redis.from_url(url)
    if prefix_in_use(client, args.prefix):
        raise SystemExit(f"keys with prefix {args.prefix!r} exist already: choose another --prefix")
    limits = Limits.of(client)
    version = str(client.info("server")["redis_version"])
    client.close()
    template, info, store = build_template(
        args.prefix,
        args.template_persons,
        args.seed,
        limits,
        args.dedupe,
        event_ids=args.event_ids,
    )
    print(
        f"template: {info.people:,} people, {info.events:,} events through the handlers in "
        f"{info.emulate_seconds:.0f} s; {len(template.own):,} keys, {len(template.entries):,} "
        f"graph entries and {template.counts['lookup']:,} lookup records, "
        f"{len(template.persons):,} live persons",
        file=sys.stderr,
    )
    if info.topic_messages:
        print(
            f"explain topic (Kafka, not Redis): {info.topic_messages:,} messages, "
            f"{info.topic_bytes / len(template.persons):,.0f} bytes of keys and values a live "
            "person",
            file=sys.stderr,
        )
    clones = max(1, math.ceil(args.persons / template.people))
    sampled: dict[str, Any] = {}
    baseline = load_and_measure(
        template, url, clones, name="baseline", seed=args.seed * 1_000_003,
        measure_clones=args.measure_clones, keep=args.keep, thresholds=sampled,
    )  # fmt: skip
    print_report(baseline, info)
    print(
        f"\nvalue bands: a sample of {sampled['sample_persons']:,} persons "
        f"({sampled['sample_customers']:,} customers) read in {sampled['sample_seconds']:.2f} s "
        f"of {sampled['persons']:,} persons ({sampled['customers']:,} customers); share of "
        "all customers at or above each threshold minus the share it marks: "
        + ", ".join(f"{k} {v:+.2%}" for k, v in sampled["share_above_minus_target"].items())
    )
    results: dict[str, Any] = {
        "command": "python bench/memory.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "redis": {"version": version, "private": args.private_redis, "limits": limits.__dict__},
        "baseline": as_json(baseline, info),
        "value_sample": sampled,
        "experiments": [],
    }
    names = list(EXPERIMENTS) if "all" in args.experiment else args.experiment
    for name in names:
        experiment = EXPERIMENTS[name]
        if experiment.config and not args.private_redis:
            print(f"\n{name}: needs --private-redis (a server setting); skipped")
            continue
        with _server(args, experiment.config) as where:
            if experiment.change is not None:
                records = experiment.change(template.records, args.prefix)
            else:
                server = redis.Redis.from_url(where)
                records = keyspace(
                    store, args.prefix, dedupe=args.dedupe, now=int(SIM_NOW.timestamp()),
                    limits=Limits.of(server),
                )  # fmt: skip
                server.close()
            variant = Template(records, args.prefix, template.people, template.live)
            measured = load_and_measure(
                variant, where, clones, name=name, seed=args.seed * 1_000_003,
                measure_clones=args.measure_clones, keep=False,
            )  # fmt: skip
        print_report(measured, info)
        results["experiments"].append(_experiment_json(experiment, measured, baseline, info))
    if results["experiments"]:
        print_experiments(baseline, results["experiments"])
    if args.json:
        args.json.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if args.markdown:
        args.markdown.write_text(markdown(results))


# --------------------------------------------------------------------------------------------
# --verify: the bulk path against the real handlers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One key as Redis holds it."""

    type: str
    value: Any
    encoding: str
    ttl_ms: int
    memory: int


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, Seen]:
    """Every key of ``prefix`` with type, value, encoding, TTL and ``MEMORY USAGE``."""
    keys = sorted(client.scan_iter(match=f"{prefix}:*", count=10000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.execute_command("OBJECT", "ENCODING", key)  # type: ignore[no-untyped-call]
        pipe.pttl(key)
        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")  # type: ignore[no-untyped-call]
    meta = pipe.execute()
    pipe = client.pipeline(transaction=False)
    types = [t.decode() for t in meta[0::4]]
    for key, kind in zip(keys, types, strict=True):
        if kind == "string":
            pipe.get(key)
        elif kind == "hash":
            pipe.hgetall(key)
        elif kind == "set":
            pipe.smembers(key)
        elif kind == "list":
            pipe.lrange(key, 0, -1)
        else:
            pipe.zrange(key, 0, -1, withscores=True)
    values = pipe.execute()
    out = {}
    for n, key in enumerate(keys):
        value = values[n]
        if types[n] == "set":
            value = frozenset(value)
        elif types[n] == "zset":
            value = dict(value)
        encoding = meta[4 * n + 1]
        out[key] = Seen(
            types[n], value, encoding.decode(), int(meta[4 * n + 2]), int(meta[4 * n + 3])
        )
    return out


def _rename(value: Any, names: dict[bytes, bytes]) -> Any:
    def one(data: bytes) -> bytes:
        return _RUN.sub(lambda m: names.get(m.group(), m.group()), data)

    if isinstance(value, bytes):
        return one(value)
    if isinstance(value, frozenset):
        return frozenset(one(v) for v in value)
    if isinstance(value, list):
        return [one(v) for v in value]
    if isinstance(value, dict):
        return {one(k): (one(v) if isinstance(v, bytes) else v) for k, v in value.items()}
    return value


def _rename_value(code: str, value: bytes, names: dict[bytes, bytes]) -> bytes:
    """A bucket field's value with ids renamed; a person state's first letter (``v`` or
    ``r``, ``Entry.mark``) apart from the id behind it."""
    if code == "state":
        return value[:1] + cast(bytes, _rename(value[1:], names))
    return cast(bytes, _rename(value, names))


def _argument_buffer(want: Seen, got: Seen) -> bool:
    """A string SET by a Lua script larger than the same value written in bulk.

    Redis 7.0 keeps the argument objects of ``redis.call`` for reuse; a SET whose value fits a
    kept, longer buffer stores that buffer: an ``embstr`` one allocation size class (16 B)
    larger, a ``raw`` one by what the kept buffer was longer (dedupe markers, receipts).
    Which keys get one depends on the calls before, so the bulk path cannot mirror it;
    ``compare`` counts these apart from the tolerance. Same value and encoding: the
    difference can only be the allocation.
    """
    return (
        want.type == got.type == "string"
        and want.value == got.value
        and want.encoding == got.encoding
        and want.memory > got.memory
    )


def compare(
    expected: dict[bytes, Seen], actual: dict[bytes, Seen], what: str, prefix: str
) -> list[str]:
    """Differences between two snapshots; prints a summary per key type."""
    problems: list[str] = []
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    problems += [f"{what}: missing {k!r}" for k in missing[:5]]
    problems += [f"{what}: unexpected {k!r}" for k in extra[:5]]
    memory: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    reused = [0, 0]
    for key in sorted(set(expected) & set(actual)):
        want, got = expected[key], actual[key]
        kind = category(key, prefix.encode())
        stats = memory[kind]
        stats[0] += 1
        stats[1] += want.memory
        stats[2] += got.memory
        if (want.type, want.value) != (got.type, got.value):
            problems.append(f"{what}: {key!r} holds {got.value!r}, expected {want.value!r}")
        if want.encoding != got.encoding:
            problems.append(f"{what}: {key!r} is {got.encoding}, expected {want.encoding}")
        if (want.ttl_ms < 0) != (got.ttl_ms < 0) or abs(want.ttl_ms - got.ttl_ms) > 600_000:
            problems.append(f"{what}: {key!r} TTL {got.ttl_ms} ms, expected {want.ttl_ms} ms")
        if want.memory != got.memory:
            stats[3] += 1
        if _argument_buffer(want, got):
            reused[0] += 1
            reused[1] += want.memory - got.memory
    print(f"\n{what}: {len(expected):,} keys expected, {len(actual):,} written")
    print(f"  {'key type':44} {'keys':>7} {'expected B':>11} {'written B':>11} {'differ':>7}")
    for code, label, _ in CATEGORIES:
        if code in memory:
            n, want_b, got_b, differ = memory[code]
            print(f"  {label:44} {n:>7,} {want_b:>11,} {got_b:>11,} {differ:>7,}")
    want_total = sum(s[1] for s in memory.values())
    got_total = sum(s[2] for s in memory.values())
    if abs(want_total - reused[1] - got_total) > 0.005 * want_total:
        worst = max(memory.items(), key=lambda item: abs(item[1][1] - item[1][2]))[0]
        problems.append(
            f"{what}: MEMORY USAGE {got_total:,} B, expected {want_total:,} B (most in {worst}; "
            "a BGSAVE or AOF rewrite running meanwhile keeps hash tables from growing)"
        )
    count = sum(s[0] for s in memory.values())
    print(f"  {'total':44} {count:>7,} {want_total:>11,} {got_total:>11,}")
    if reused[0]:
        print(
            f"  {reused[0]:,} expected strings {reused[1]:,} B larger than written: "
            "a Lua script's SET stored a reused, longer argument buffer"
        )
    if len(problems) > 20:
        problems = [*problems[:20], f"... and {len(problems) - 20} more"]
    return problems


def _without_buckets(
    keys: dict[bytes, Seen], prefix: str
) -> tuple[dict[bytes, Seen], dict[str, dict[bytes, bytes]]]:
    """The keys but the buckets, and the entries those hold by key type (graph: token ->
    person, lookup: token -> record, met: token -> persons, facts: person -> its facts packed,
    state: person -> ``v<version>:<state>`` or ``r<survivor>``, explain: person -> its
    entries, redirect: person -> survivor, absorbed: person -> persons)."""
    p = prefix.encode()
    rest: dict[bytes, Seen] = {}
    entries: dict[str, dict[bytes, bytes]] = {code: {} for code in BUCKETED}
    for key, seen in keys.items():
        code = category(key, p)
        if code not in BUCKETED:
            rest[key] = seen
            continue
        bucket = _bucket_of(code, key)[1]
        for name, value in cast(dict[bytes, bytes], seen.value).items():
            entries[code][_entry_name(code, bucket, name)] = value
    return rest, entries


def _unlink_all(client: redis.Redis, keys: Iterable[bytes]) -> None:
    batch = list(keys)
    for start in range(0, len(batch), 1000):
        client.unlink(*batch[start : start + 1000])


def verify(url: str, args: argparse.Namespace) -> bool:
    """The bulk path and a clone against the real handlers and scripts, key by key."""
    from bestand.store import connect

    prefix = args.prefix
    client = redis.Redis.from_url(url)
    if prefix_in_use(client, prefix):
        raise SystemExit(f"keys with prefix {prefix!r} exist already: choose another --prefix")
    limits = Limits.of(client)
    changed = [n for n, sha in script_digests().items() if sha not in PORTED_SCRIPTS[n]]
    problems = [f"{n}.lua differs from the version the port was written for" for n in changed]
    shop = simulate(persons=args.verify_persons - 1, seed=args.seed, now=SIM_NOW)
    settings = settings_for(prefix, url)
    print(f"verify: {len(shop.personas)} people, {len(shop.events):,} events")
    started = time.perf_counter()

    async def real() -> None:
        worker_client = connect(url)
        try:
            await replay(shop.events, settings, worker_client)
        finally:
            await worker_client.aclose()

    try:
        asyncio.run(real())
        print(f"  real handlers and Lua scripts: {time.perf_counter() - started:.1f} s")
        by_handlers = snapshot(client, prefix)
        _unlink_all(client, by_handlers)
        template, info, _ = build_template(prefix, args.verify_persons, args.seed, limits, "all")
        print(f"  in-process template: {info.emulate_seconds:.1f} s")
        pipe = Pipe(url)
        template.send(pipe, template.atoms)
        pipe.drain()
        by_bulk = snapshot(client, prefix)
        _unlink_all(client, by_bulk)
        problems += compare(by_handlers, by_bulk, "bulk path vs real handlers", prefix)
        fresh = template.fresh_atoms(args.seed)
        template.send(pipe, fresh)
        pipe.drain()
        pipe.close()
        cloned = snapshot(client, prefix)
        _unlink_all(client, cloned)
        back = dict(zip(fresh, template.atoms, strict=True))
        # A clone's bucket fields (graph entries, lookup records, meetings, graph facts, person
        # states, short explain logs, redirects, absorbed persons) share buckets other than its
        # template's: compared as entries, the other keys key by key.
        bulk_keys, bulk_entries = _without_buckets(by_bulk, prefix)
        cloned_keys, cloned_entries = _without_buckets(cloned, prefix)
        renamed = {
            _rename(key, back): replace(seen, value=_rename(seen.value, back))
            for key, seen in cloned_keys.items()
        }
        problems += compare(bulk_keys, renamed, "clone (ids renamed back) vs bulk path", prefix)
        for code in BUCKETED:
            want = bulk_entries[code]
            got = {
                _rename(t, back): _rename_value(code, v, back)
                for t, v in cloned_entries[code].items()
            }
            print(
                f"  {LABELS[code].split('  ')[0]}: {len(want):,} in the bulk path, "
                f"{len(got):,} in the clone"
            )
            if got != want:
                differ = sorted(set(got.items()) ^ set(want.items()))
                problems.append(
                    f"clone: {code} entries differ from the bulk path's: {differ[:3]!r}"
                )
    finally:
        _unlink_all(client, client.scan_iter(match=f"{prefix}:*", count=10000))
        client.close()
    for problem in problems:
        print(f"  MISMATCH {problem}")
    print("\nverify: " + ("FAILED" if problems else "OK: same keys, values, encodings, TTLs"))
    return not problems


if __name__ == "__main__":
    main()
