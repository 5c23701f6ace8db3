"""The lookup logic behind the HTTP routes: key an identifier, read one record, answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bestand.identity import IdentityKeyer, IdKind, InvalidIdentifier, KeyedId
from bestand.profile import LifecycleRules, unknown_answer
from bestand.store import LookupReader

PARAM_KINDS: dict[str, IdKind] = {
    "customer_id": IdKind.CUSTOMER,
    "email": IdKind.EMAIL,
    "email_sha256": IdKind.EMAIL,
    "phone": IdKind.PHONE,
    "anonymous_id": IdKind.ANONYMOUS,
    "device_id": IdKind.DEVICE,
    "loyalty_card": IdKind.LOYALTY,
    "order_id": IdKind.ORDER,
}


class LookupService:
    """Answers lookups by any identifier with one Redis round trip (or one pipeline per batch)."""

    def __init__(
        self,
        reader: LookupReader,
        keyer: IdentityKeyer,
        rules: LifecycleRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._keyer = keyer
        self._rules = rules
        self._clock = clock

    def key(self, name: str, value: str) -> KeyedId:
        """Keyed form of a named identifier; raises :class:`InvalidIdentifier`."""
        kind = PARAM_KINDS.get(name)
        if kind is None:
            raise InvalidIdentifier(f"unknown identifier '{name}'")
        if name == "email_sha256":
            return self._keyer.key_sha256(kind, value)
        return self._keyer.key(kind, value)

    async def lookup(self, name: str, value: str) -> dict[str, Any]:
        """Answer for one identifier."""
        summary = await self._reader.get(self.key(name, value).token)
        if summary is None:
            return unknown_answer()
        return summary.answer(int(self._clock()), self._rules)

    async def lookup_many(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Answers for many identifiers; an invalid one gets ``{'error': ...}`` in its place."""
        keyed: list[KeyedId | str] = []
        for name, value in items:
            try:
                keyed.append(self.key(name, value))
            except InvalidIdentifier as exc:
                keyed.append(f"{name}: {exc}")
        tokens = [kid.token for kid in keyed if isinstance(kid, KeyedId)]
        summaries = iter(await self._reader.get_many(tokens))
        now = int(self._clock())
        out: list[dict[str, Any]] = []
        for kid in keyed:
            if isinstance(kid, str):
                out.append({"answer": None, "error": kid})
                continue
            summary = next(summaries)
            answer = unknown_answer() if summary is None else summary.answer(now, self._rules)
            out.append({"answer": answer, "error": None})
        return out
