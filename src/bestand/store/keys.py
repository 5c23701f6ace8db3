"""Every Redis key bestand writes, in one place.

``{g}`` keeps the identity graph in one hash slot, because a merge changes many of its keys
atomically; a person bucket's name is a hash tag of its own; lookup buckets have no hash
tag: both spread over a cluster's slots, so the hot read path scales out.

Graph entries (identifier -> person), lookup records (identifier -> summary), person states,
a person's graph facts, short explain logs (person -> entries), meetings, redirects and
absorbed persons are fields of bucket hashes named by the first
:data:`BUCKET_CHARS` characters of the identifier's hash or the person's id, as Instagram
kept its 300 million mappings: a key each cost about 60 bytes of Redis's own besides its
data and a keyspace entry; a field of a bucket's listpack a few bytes
(``bench/bucket_keys.py``, ``bench/memory.py``). A read is still one command (``HGET``).
A person's short explain log, redirect and absorbed persons share its facts bucket, an
identifier's meetings its graph bucket, as fields marked :data:`LOG_FIELD`,
:data:`REDIRECT_FIELD`, :data:`ABSORBED_FIELD` and :data:`MET_FIELD`: buckets of their own
held one or two fields each at a million persons, and cost 40 bytes a person more
(``bench/memory.py --experiment graph-buckets-merged``, layout 10).

A person's facts (its graph version, identifiers, describing tokens and claims) are
one field of a facts bucket: what was a hash's fields, ``name\x1fvalue`` joined by ``\x1e``,
the version first and the others in their order (:func:`facts_pairs`, :func:`packed_facts`;
the graph read hands them on with one substitution); a hash of its own cost about 140 bytes
of Redis's own (``bench/memory.py``). The graph's small sets (an identifier's
meetings, a person's absorbed persons) are their members joined by ``,`` in a bucket's field.

| key | type | holds |
|---|---|---|
| ``<p>:{g}:i:<hash[:3]>`` | hash | the identity graph: ``<kind>:<hash[3:]>`` -> person id; |
|   |   | ``+<kind>:<hash[3:]>`` -> the other persons the identifier met (its claims), |
|   |   | joined by ``,`` |
| ``<p>:{g}:k:<person[:3]>`` | hash | facts of persons: person id -> ``v`` graph version |
|   |   | (guards concurrent changes), its identifiers (``kind:hash`` -> empty: counted by |
|   |   | kind, they are what the policy's limits read), describing tokens (names, |
|   |   | households -> 1), claims |
|   |   | (``@kind:hash`` -> time claimed), as :func:`packed_facts` joins them; |
|   |   | ``y:<person>`` -> its explain log, entries split by ``\\x1e`` (merges, moves, |
|   |   | refusals, junk flags; ``identity/entries.py``: fields split by ``\\x1f``) while at |
|   |   | most :data:`LOG_INLINE` bytes; ``r:<person>`` -> whom a merged-away person went |
|   |   | into; ``a:<person>`` -> the persons merged into it, joined by ``,`` |
| ``<p>:{g}:x:<person>`` | list | a longer explain log, an entry an element |
| ``<p>:{g}:c:<kind>:<hash>`` | list | a cookie's or device id's holders by claim time, |
|   |   | ``time:person``, once it moved between persons (the last ``MAX_CLAIMS``) |
| ``<p>:{g}:j:<kind>:<hash>`` | string | why an identifier is junk (it never links again) |
| ``<p>:{g}:t:<kind>:<hash>`` | string | tombstone: when the identifier's person was erased |
| ``<p>:{g}:e:<event>`` | string | receipt of an event that merged or flagged junk (TTL) |
| ``<p>:{g}:f:<batch>`` | string | a batch's graph write stopped at a changed guard (short TTL) |
| ``<p>:p:{<person[:3]>}`` | hash | persons: person id -> ``v<version>:<state>`` (packed: |
|   |   | ``profile/stored.py``), or ``r<person>`` whom it went into after a merge |
| ``<p>:d:{<person[:3]>}:<person>:<event>`` | string | event already applied (TTL), in |
|   |   | its person bucket's hash slot: a cluster writes it with the person's state |
| ``<p>:l:<hash[:3]>`` | hash | lookup records: ``<kind>:<hash[3:]>`` -> person id and summary |
|   |   | (packed fields); a cookie's or device id's is written only by the person the |
|   |   | graph gives it to |
| ``<p>:layout`` | string | the layout of these keys the store holds (``store/layout.py``) |
| ``<p>:hb:<worker>`` | string | a worker's heartbeat: JSON of its state, expires (TTL) |

The Lua scripts build no key names of their own: they get the prefixes and the width of a
bucket's name (``bucket_chars``) from :meth:`Keys.graph_schema` and
:meth:`Keys.person_schema`, and append the ids they hold, or a bucket's characters of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import orjson

from bestand.identity.kinds import MOVABLE
from bestand.identity.overlay import MAX_CLAIMS

#: Characters of an identifier's hash (base64url) that name its graph bucket: 64 ** 3 =
#: 262,144 buckets, about 22 entries each at a million persons (5.7 identifiers each). Past
#: ``hash-max-listpack-entries`` (128 by default, about 6 million persons) Redis turns a bucket
#: into a hash table: 72 bytes an entry instead of about 40, still less than a key each.
BUCKET_CHARS = 3


#: Bytes of a person's explain log kept as one field of a log bucket; a longer log is a list
#: of its own, appended to in place. Below ``hash-max-listpack-value`` (2048 where bestand's
#: Redis runs), so that a bucket stays a listpack: 99.9 % of the simulated shop's logs fit.
LOG_INLINE = 2000


def bucket_field(token: str) -> str:
    """An identifier's field in its graph bucket: the token without the bucket's characters."""
    return token[:2] + token[2 + BUCKET_CHARS :]


def token_of(bucket: str, field: str) -> str:
    """The identifier (``kind:hash``) of a field of the graph bucket ``bucket`` (its suffix)."""
    return field[:2] + bucket + field[2:]


#: What marks a field of a facts bucket as a person's short explain log, its redirect (whom it
#: went into) and the persons it absorbed (the person id follows), and a field of a graph
#: bucket as an identifier's meetings (its entry's field follows).
LOG_FIELD = "y:"
REDIRECT_FIELD = "r:"
ABSORBED_FIELD = "a:"
MET_FIELD = "+"


#: What joins a person's facts (:func:`packed_facts`), and a fact's name to its value.
FACTS_SEP = "\x1e"
FACT_VALUE = "\x1f"


def facts_pairs(value: bytes | str | None) -> list[tuple[str, str]]:
    """A person's facts, its field of a facts bucket, as (name, value) pairs in their order."""
    if not value:
        return []
    text = value.decode() if isinstance(value, bytes) else value
    return [
        (name, fact) for name, _, fact in (e.partition(FACT_VALUE) for e in text.split(FACTS_SEP))
    ]


#: A fact that holds a claim on a cookie or device id: this + the token, the time claimed.
CLAIM = "@"


def facts_members(value: bytes | str | None) -> set[str]:
    """A person's identifiers and describing tokens: the names of its facts of more than one
    letter, but for claims."""
    return {name for name, _ in facts_pairs(value) if len(name) > 1 and name[0] != CLAIM}


def packed_facts(pairs: Iterable[tuple[str, str]]) -> str:
    """(name, value) pairs as a person's facts are stored: ``name\x1fvalue`` (an
    identifier's value is empty) joined by ``\x1e``, the version (``v``) first."""
    listed = list(pairs)
    ordered = [p for p in listed if p[0] == "v"] + [p for p in listed if p[0] != "v"]
    return FACTS_SEP.join(name + FACT_VALUE + value for name, value in ordered)


def person_value(value: bytes) -> tuple[str | None, int, bytes]:
    """A person's field of its bucket: whom it went into (or ``None``), its version and its
    state (``b''`` where there is none)."""
    if value[:1] == b"r":
        return value[1:].decode(), 0, b""
    version, _, state = value[1:].partition(b":")
    return None, int(version), state


def event_key(event_id: str) -> str:
    """An event id as part of a key: long ids (a producer's choice) go in as a digest."""
    if len(event_id) > 64:
        return hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest()
    return event_id


def receipt_suffix(event_id: str) -> str:
    """An event id in a receipt key: long ids as their SHA-1, which ``erase.lua`` can compute."""
    if len(event_id) > 64:
        return hashlib.sha1(event_id.encode()).hexdigest()  # noqa: S324 - a name, not a secret
    return event_id


@dataclass(frozen=True)
class Keys:
    """Key builder for one key prefix (``settings.redis_prefix``)."""

    prefix: str = "b"

    @property
    def graph(self) -> str:
        """Prefix of the identity graph keys (one hash slot)."""
        return f"{self.prefix}:{{g}}"

    def identifier(self, token: str) -> str:
        """Graph bucket of one identifier (``kind:hash``); its field is :func:`bucket_field`."""
        return f"{self.graph}:i:{token[2 : 2 + BUCKET_CHARS]}"

    def entry(self, token: str) -> tuple[str, str]:
        """Graph bucket and field of one identifier (``HGET`` them for its person id)."""
        return self.identifier(token), bucket_field(token)

    @property
    def buckets(self) -> str:
        """Prefix of the graph buckets (a bucket's key is this and its characters)."""
        return f"{self.graph}:i:"

    def facts(self, person_id: str) -> str:
        """Facts bucket of a person: its field there holds its version, counts by kind,
        identifiers, describing tokens and claims (:func:`facts_pairs`)."""
        return f"{self.graph}:k:{person_id[:BUCKET_CHARS]}"

    def merge_log(self, person_id: str) -> str:
        """Explain log of a person once it is longer than :data:`LOG_INLINE` bytes (a list)."""
        return f"{self.graph}:x:{person_id}"

    def log_entry(self, person_id: str) -> tuple[str, str]:
        """Bucket and field of a person's explain log while short (its facts bucket)."""
        return self.facts(person_id), LOG_FIELD + person_id

    def redirect_entry(self, person_id: str) -> tuple[str, str]:
        """Bucket and field of whom a merged-away person went into (its facts bucket)."""
        return self.facts(person_id), REDIRECT_FIELD + person_id

    def met_entry(self, token: str) -> tuple[str, str]:
        """Bucket and field of the persons an identifier met (its graph bucket)."""
        return self.identifier(token), MET_FIELD + bucket_field(token)

    def absorbed_entry(self, person_id: str) -> tuple[str, str]:
        """Bucket and field of the persons a person absorbed, joined by ``,`` (its facts
        bucket)."""
        return self.facts(person_id), ABSORBED_FIELD + person_id

    def junk(self, token: str) -> str:
        """Junk flag (with its reason) of an identifier."""
        return f"{self.graph}:j:{token}"

    def claims(self, token: str) -> str:
        """Holders of a cookie or device id by claim time, once it moved between persons."""
        return f"{self.graph}:c:{token}"

    def tombstone(self, token: str) -> str:
        """Erasure time of an identifier (``kind:hash``): older events no longer use it."""
        return f"{self.graph}:t:{token}"

    @property
    def persons(self) -> str:
        """Prefix of the person buckets (a bucket's name follows in braces: a hash tag)."""
        return f"{self.prefix}:p:{{"

    def person(self, person_id: str) -> str:
        """Person bucket of a person: its state is its field there (:func:`person_value`)."""
        return f"{self.prefix}:p:{{{person_id[:BUCKET_CHARS]}}}"

    def receipt(self, event_id: str) -> str:
        """What an event that merged persons or flagged junk decided (for a redelivery)."""
        return f"{self.graph}:e:{receipt_suffix(event_id)}"

    def dedupe(self, person_id: str, event_id: str) -> str:
        """Marker that an event was applied to a person, under its person bucket's hash tag
        (a cluster writes it with the person's state, in one script)."""
        tag = person_id[:BUCKET_CHARS]
        return f"{self.prefix}:d:{{{tag}}}:{person_id}:{event_key(event_id)}"

    def lookup(self, token: str) -> str:
        """Lookup bucket of one identifier (``kind:hash``); its field is :func:`bucket_field`."""
        return f"{self.prefix}:l:{token[2 : 2 + BUCKET_CHARS]}"

    def lookup_entry(self, token: str) -> tuple[str, str]:
        """Lookup bucket and field of one identifier (``HGET`` them for its record)."""
        return self.lookup(token), bucket_field(token)

    @property
    def lookups(self) -> str:
        """Prefix of the lookup buckets (a bucket's key is this and its characters)."""
        return f"{self.prefix}:l:"

    @property
    def layout(self) -> str:
        """The layout of these keys a store holds (``store/layout.py``)."""
        return f"{self.prefix}:layout"

    @property
    def values(self) -> str:
        """The sorted set of every customer's lifetime value that layouts before 9 kept
        (value bands now rank a sample of the persons' states: ``store/values.py``)."""
        return f"{self.prefix}:values"

    def heartbeat(self, worker: str) -> str:
        """Heartbeat of one worker process (expires when the worker stops beating)."""
        return f"{self.prefix}:hb:{worker}"

    def heartbeats(self) -> str:
        """Pattern matching every worker's heartbeat."""
        return f"{self.prefix}:hb:*"

    def batch_stop(self, batch: str) -> str:
        """Flag that a batch's graph write stopped at a guard: its later scripts apply nothing."""
        return f"{self.graph}:f:{batch}"

    @cached_property
    def graph_schema(self) -> bytes:
        """The identity graph's key prefixes by name, as JSON, for the graph scripts."""
        g = self.graph
        return orjson.dumps(
            {
                "identifier": f"{g}:i:",
                "facts": f"{g}:k:",
                "log": f"{g}:x:",
                "log_bucket": f"{g}:k:",
                "log_field": LOG_FIELD,
                "log_inline": LOG_INLINE,
                "met": f"{g}:i:",
                "met_field": MET_FIELD,
                "junk": f"{g}:j:",
                "redirect": f"{g}:k:",
                "redirect_field": REDIRECT_FIELD,
                "absorbed": f"{g}:k:",
                "absorbed_field": ABSORBED_FIELD,
                "tombstone": f"{g}:t:",
                "receipt": f"{g}:e:",
                "batch_stop": f"{g}:f:",
                "claims": f"{g}:c:",
                "movable": "".join(sorted(MOVABLE)),
                "max_claims": MAX_CLAIMS,
                "bucket_chars": BUCKET_CHARS,
            }
        )

    @cached_property
    def person_schema(self) -> bytes:
        """Key prefixes of person state and lookup records, as JSON, for the scripts
        that write persons (a person bucket is ``person`` + the first ``bucket_chars`` of an id
        + ``person_end``)."""
        return orjson.dumps(
            {
                "person": self.persons,
                "person_end": "}",
                "lookup": f"{self.prefix}:l:",
                "identifier": f"{self.graph}:i:",
                "bucket_chars": BUCKET_CHARS,
                "movable": "".join(sorted(MOVABLE)),
            }
        )

    def pattern(self) -> str:
        """Glob over every key of this prefix (for tests and ``bestand reset``)."""
        return f"{self.prefix}:*"
