"""bestand's compiled core: the person-state fold and the identity resolver (see native/src)."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bestand.events import ResolvedEvent
from bestand.profile.fold import ApplyOutcome
from bestand.store.identity_graph import Answer, Resolution

BUCKET_CHARS: int
"""Characters of an identifier's hash that name its graph bucket (``keys.BUCKET_CHARS``)."""

class Folder:
    """What ``ProfileStore`` does between its Redis round trips, for a whole batch."""

    def __init__(
        self,
        prefix: str,
        person_schema: bytes,
        dedupe_ttl: int,
        rule: str,
        remembered: int = 20_000,
    ) -> None: ...
    def begin(self, events: Sequence[ResolvedEvent]) -> Batch: ...
    def forget(self, person: str) -> None: ...

class Batch:
    """One batch on its way through rounds of read, fold and write."""

    def read(self) -> list[tuple[int, bytes]] | None: ...
    def feed(self, rows: list[Any], markers: list[Any]) -> None: ...
    def fold(
        self, describe: tuple[int, tuple[int, int, int, int]] | None = None
    ) -> list[tuple[int, bytes]]: ...
    def written(self, replies: Sequence[Sequence[int]]) -> bool: ...
    def writes(self) -> tuple[int, int, int]: ...
    def outcomes(self) -> list[ApplyOutcome]: ...

class Resolver:
    """What ``IdentityGraph`` does between its Redis round trips, for a whole batch."""

    def __init__(
        self,
        identifier_prefix: str,
        schema: bytes,
        max_log: int,
        policy: dict[str, tuple[str, int, int | None]],
        describing: str,
        receipt_ttl: int,
        links_out: bool = False,
    ) -> None: ...
    def begin(self, batch: Sequence[Resolution]) -> GraphBatch: ...

class GraphBatch:
    """One batch on its way through rounds of read, decide and apply."""

    def read(self) -> list[tuple[int, bytes]] | None: ...
    def decide(self, replies: list[Any], stop: str) -> list[tuple[int, bytes]]: ...
    def links(self) -> list[tuple[int, str, str, list[str]]]: ...
    def applied(self, applied: int) -> bool: ...
    def answers(self) -> list[Answer]: ...

class Keyer:
    """``IdentityKeyer.key_tokens`` with its cache of outcomes; asks ``fallback`` what it
    does not handle itself (phones, SHA-256 digests, values beyond printable ASCII)."""

    def __init__(
        self,
        secret: bytes,
        fallback: Callable[[Any, str, bool], tuple[str | None, str | None, str | None]],
        email_reason: Callable[[str], str | None],
        junk_values: Sequence[str],
        gmail_domains: Sequence[str],
        aliases: Mapping[str, str],
        cache_size: int = 100_000,
    ) -> None: ...
    def key_tokens(
        self, raw: list[tuple[Any, str, bool]]
    ) -> tuple[list[str], list[tuple[Any, str]], list[tuple[str, str]], list[tuple[str, str]]]: ...
    def cached(self) -> int: ...

class Decoder:
    """The worker's decoding of the input messages it can vouch for (the rest: pydantic)."""

    def __init__(
        self,
        resolved_event: type[ResolvedEvent],
        order_facts: type[Any],
        attribution: type[Any],
        tz_info: type[Any],
        fingerprints: Callable[..., tuple[str | None, str | None]],
        name_key: Callable[[str | None, str | None], str | None],
        default_country: str,
        kinds: Mapping[str, Any],
        earliest: float,
        literals: Mapping[str, Sequence[str]],
    ) -> None: ...
    def decode(
        self, kind: str, value: bytes, topic: str, now: float, max_future: float
    ) -> tuple[ResolvedEvent, list[tuple[Any, str, bool]], int] | None: ...

class Facts:
    """What the compiled decoder knows of an event apart from its person, for the fold."""

    @property
    def digest(self) -> str: ...

def event_for_test(event: ResolvedEvent) -> tuple[str, str, str]: ...
def state_for_test(blob: bytes) -> bytes: ...
def unpack_state(blob: bytes) -> dict[str, Any]: ...
def keyed_hash_of(secret: bytes, kind: str, normalized: str) -> str: ...
def digest_and_key(event: ResolvedEvent) -> tuple[str, str]: ...

# For the tests: ``bestand.identity.rules.decide`` compiled, over plain data.
def decide_for_test(
    tokens: Sequence[str],
    view: Mapping[str, Any],
    policy: Mapping[str, tuple[str, int, int | None]],
    candidate: str,
    pattern_junk: Sequence[tuple[str, str]] = (),
    at: int = 0,
) -> dict[str, Any]: ...

def stored_entry_for_test(
    kind: str,
    tokens: Sequence[str],
    rule: str,
    via: str | None,
    other: str | None,
    event_id: str,
    at: int,
) -> str: ...
