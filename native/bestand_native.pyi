"""bestand's person-state fold, compiled (see native/src/lib.rs)."""

from collections.abc import Sequence
from typing import Any

from bestand.events import ResolvedEvent
from bestand.profile.fold import ApplyOutcome

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

    def read(self) -> tuple[list[str], list[int]] | None: ...
    def feed(self, rows: list[Any], markers: list[Any]) -> None: ...
    def fold(
        self, describe: tuple[int, tuple[int, int, int, int]] | None = None
    ) -> list[tuple[list[str], list[Any]]]: ...
    def written(self, replies: Sequence[Sequence[int]]) -> bool: ...
    def outcomes(self) -> list[ApplyOutcome]: ...

def digest_and_key(event: ResolvedEvent) -> tuple[str, str]: ...
