"""Turn raw identifiers into keyed identifiers with the configured secret and phone region."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bestand.identity.errors import InvalidIdentifier
from bestand.identity.hashing import keyed_hash, keyed_value, parse_sha256
from bestand.identity.junk import (
    JUNK_VALUES,
    JunkRules,
    fake_number_reason,
    fake_phone_reason,
)
from bestand.identity.kinds import IdKind
from bestand.identity.normalize import (
    GMAIL_DOMAINS,
    MAIL_DOMAIN_ALIASES,
    e164,
    normalize_device_id,
    normalize_email,
    normalize_loyalty_card,
    normalize_payment_fingerprint,
    normalize_phone,
    normalize_token,
    parse_phone,
)


@dataclass(frozen=True, slots=True)
class KeyedId:
    """One identifier in its stored form: its kind and its keyed hash."""

    kind: IdKind
    hash: str
    #: ``kind:hash``, the form used in keys, sets and resolved events (made once: the keyer
    #: keeps its outcomes, and every event asks for the tokens of its identifiers).
    token: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", self.kind + ":" + self.hash)  # StrEnum: its letter

    @classmethod
    def from_token(cls, token: str) -> KeyedId:
        """Read the ``kind:hash`` form back."""
        kind, _, digest = token.partition(":")
        return cls(IdKind(kind), digest)


@dataclass
class Keyed:
    """The identifiers of one event after keying."""

    ids: list[KeyedId] = field(default_factory=list)
    #: Values that could not be normalized: (kind, why).
    rejected: list[tuple[IdKind, str]] = field(default_factory=list)
    #: The same values, keyed as they came (trimmed, hashed with the secret like every
    #: identifier), so that a person's explain log can say what was thrown away and why.
    refused: list[tuple[KeyedId, str]] = field(default_factory=list)
    #: Recognised junk (dummy e-mails, fake phones, 'null'): keyed, but never used to link.
    junk: list[tuple[KeyedId, str]] = field(default_factory=list)


#: What keying one raw identifier gives: its keyed form and junk reason, or the keyed form of
#: the raw value and why it was refused (None and None: a placeholder value such as 'null',
#: dropped without a word).
_Outcome = tuple[KeyedId | None, str | None, str | None]

#: What :meth:`IdentityKeyer.key_tokens` gives: the tokens to link by, ``(kind, why)`` of each
#: refused value, ``(token, why)`` of each junk value and of each refused value.
KeyedTokens = tuple[
    list[str], list[tuple[IdKind, str]], list[tuple[str, str]], list[tuple[str, str]]
]

#: Put in front of a refused value before it is keyed: no normalized value starts so, so a
#: refused value never shares a key with a usable one.
_REFUSED = "\x1frefused\x1f"


class IdentityKeyer:
    """Normalizes, hashes and keys raw identifiers; the one place that sees raw values.

    The same identifiers come back event after event (a visitor's cookie on every page, a
    customer's e-mail on every order), and parsing a phone number alone costs tens of
    microseconds: the outcome of each raw value is kept. The cache holds two generations of
    up to ``cache_size`` outcomes each: when the young one is full it becomes the old one and
    the one before is dropped, and an outcome asked for from the old generation moves to the
    young one. What recurs stays; what was seen once (an order id) ages out.

    With the compiled core (``compiled``: None uses it where installed), :meth:`key_tokens`
    runs compiled (``bestand_native.Keyer``, which asks this keyer what it does not handle
    itself); :meth:`key_all` stays Python.
    """

    def __init__(
        self,
        secret: bytes,
        default_region: str,
        junk_rules: JunkRules | None = None,
        cache_size: int = 100_000,
        compiled: bool | None = None,
    ) -> None:
        self._secret = secret
        self._region = default_region
        self._junk = junk_rules or JunkRules.default()
        self._cache: dict[tuple[IdKind, str, bool], _Outcome] = {}
        self._older: dict[tuple[IdKind, str, bool], _Outcome] = {}
        self._cache_size = cache_size
        self._native = self._compiled(cache_size) if compiled is not False else None
        if compiled and self._native is None:
            raise RuntimeError("the compiled keyer needs the bestand-native package")

    def _compiled(self, cache_size: int) -> Any:
        """The compiled keyer over this one's rules, or None without the compiled core."""
        try:
            from bestand_native import Keyer
        except ImportError:  # pragma: no cover - without the compiled core
            return None
        return Keyer(
            self._secret,
            self._token_outcome,
            self._junk.email_reason,
            sorted(JUNK_VALUES),
            sorted(GMAIL_DOMAINS),
            dict(MAIL_DOMAIN_ALIASES),
            cache_size,
        )

    @property
    def compiled(self) -> bool:
        """Whether :meth:`key_tokens` runs compiled."""
        return self._native is not None

    def normalize(self, kind: IdKind, raw: str) -> str:
        """The normalized form of a raw identifier of the given kind."""
        match kind:
            case IdKind.EMAIL:
                return normalize_email(raw)
            case IdKind.PHONE:
                return normalize_phone(raw, self._region)
            case IdKind.DEVICE:
                return normalize_device_id(raw)
            case IdKind.LOYALTY:
                return normalize_loyalty_card(raw)
            case IdKind.PAYMENT:
                return normalize_payment_fingerprint(raw)
            case _:
                return normalize_token(raw)

    def key(self, kind: IdKind, raw: str) -> KeyedId:
        """Keyed form of a raw identifier; raises :class:`InvalidIdentifier`."""
        return KeyedId(kind, keyed_value(self._secret, kind, self.normalize(kind, raw)))

    def key_sha256(self, kind: IdKind, digest: str) -> KeyedId:
        """Keyed form of an identifier the caller already normalized and SHA-256 hashed."""
        return KeyedId(kind, keyed_hash(self._secret, kind, parse_sha256(digest)))

    def junk_reason(self, kind: IdKind, raw: str, normalized: str) -> str | None:
        """Why a value is recognised junk for its kind, or ``None``."""
        reason = self._junk.value_reason(raw)
        if reason is None and kind is IdKind.EMAIL:
            reason = self._junk.email_reason(normalized)
        if reason is None and kind is IdKind.PHONE:
            reason = fake_phone_reason(normalized) or self._junk.phone_reason(normalized)
        return reason

    def _outcome(self, kind: IdKind, value: str, is_sha256: bool) -> _Outcome:
        """Key one raw identifier (the outcome is cached)."""
        asked = (kind, value, is_sha256)
        found = self._cache.get(asked)
        if found is not None:
            return found
        outcome: _Outcome | None = self._older.pop(asked, None)
        if outcome is None:
            outcome = self._new_outcome(kind, value, is_sha256)
        if len(self._cache) >= self._cache_size:
            self._older = self._cache
            self._cache = {}
        self._cache[asked] = outcome
        return outcome

    def _new_outcome(self, kind: IdKind, value: str, is_sha256: bool) -> _Outcome:
        """Key one raw identifier not in the cache."""
        outcome: _Outcome
        try:
            if is_sha256:
                outcome = (self.key_sha256(kind, value), None, None)
            elif kind is IdKind.PHONE:
                # Parsed once for both the number and whether it looks fake.
                number = parse_phone(value, self._region)
                normalized = e164(number)
                kid = KeyedId(kind, keyed_value(self._secret, kind, normalized))
                reason = (
                    self._junk.value_reason(value)
                    or fake_number_reason(number)
                    or self._junk.phone_reason(normalized)
                )
                outcome = (kid, reason, None)
            else:
                normalized = self.normalize(kind, value)
                kid = KeyedId(kind, keyed_value(self._secret, kind, normalized))
                outcome = (kid, self.junk_reason(kind, value, normalized), None)
        except InvalidIdentifier as exc:
            if self._junk.value_reason(value) is not None:
                return (None, None, None)
            kid = KeyedId(kind, keyed_value(self._secret, kind, _REFUSED + value.strip()))
            outcome = (kid, None, str(exc))
        return outcome

    def _token_outcome(
        self, kind: IdKind, value: str, is_sha256: bool
    ) -> tuple[str | None, str | None, str | None]:
        """:meth:`_new_outcome` with the keyed identifier as its token (for the compiled
        keyer, which keeps outcomes itself)."""
        kid, reason, refused = self._new_outcome(kind, value, is_sha256)
        return (None if kid is None else kid.token), reason, refused

    def key_tokens(self, raw: list[tuple[IdKind, str, bool]]) -> KeyedTokens:
        """:meth:`key_all` in the form the worker needs, compiled where it can be: the
        tokens to link by, ``(kind, why)`` of each refused value, ``(token, why)`` of each
        junk value and of each refused value."""
        if self._native is not None:
            return self._native.key_tokens(raw)  # type: ignore[no-any-return]
        keyed = self.key_all(raw)
        return (
            [kid.token for kid in keyed.ids],
            list(keyed.rejected),
            [(kid.token, why) for kid, why in keyed.junk],
            [(kid.token, why) for kid, why in keyed.refused],
        )

    def key_all(self, raw: list[tuple[IdKind, str, bool]]) -> Keyed:
        """Key every ``(kind, value, is_sha256)`` of an event."""
        out = Keyed()
        seen: set[str] = set()  # hashes kept (the kind is keyed into each)
        for kind, value, is_sha256 in raw:
            kid, reason, refused = self._outcome(kind, value, is_sha256)
            if kid is None:
                continue
            if refused is not None:
                out.rejected.append((kind, refused))
                if all(kid != known for known, _ in out.refused):
                    out.refused.append((kid, refused))
                continue
            if reason is not None:
                if all(kid != known for known, _ in out.junk):
                    out.junk.append((kid, reason))
            elif kid.hash not in seen:
                seen.add(kid.hash)
                out.ids.append(kid)
        return out
