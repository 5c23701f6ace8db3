"""The keyer's cache of outcomes: what recurs stays keyed, what was seen once ages out."""

from __future__ import annotations

from bestand.identity import IdentityKeyer
from bestand.identity.kinds import IdKind


class CountingKeyer(IdentityKeyer):
    """Counts the raw values it really keys (cache misses)."""

    def __init__(self, cache_size: int) -> None:
        super().__init__(b"secret", "DE", cache_size=cache_size)
        self.keyed: list[str] = []

    def _new_outcome(self, kind: IdKind, value: str, is_sha256: bool):  # type: ignore[no-untyped-def]
        self.keyed.append(value)
        return super()._new_outcome(kind, value, is_sha256)


def _ask(keyer: IdentityKeyer, *values: str) -> list[str]:
    keyed = keyer.key_all([(IdKind.ANONYMOUS, value, False) for value in values])
    return [kid.token for kid in keyed.ids]


def test_a_value_asked_for_again_is_not_keyed_again_while_it_recurs() -> None:
    keyer = CountingKeyer(cache_size=3)
    _ask(keyer, "cookie-a")
    # Seven values seen once each: two generations turn over meanwhile, but cookie-a is
    # asked for in between and moves to the young generation each time.
    for n in range(7):
        _ask(keyer, f"order-{n}")
        if n in (2, 5):
            _ask(keyer, "cookie-a")
    assert keyer.keyed.count("cookie-a") == 1


def test_a_value_not_asked_for_two_generations_is_keyed_again() -> None:
    keyer = CountingKeyer(cache_size=3)
    _ask(keyer, "cookie-a")
    for n in range(7):
        _ask(keyer, f"order-{n}")
    _ask(keyer, "cookie-a")
    assert keyer.keyed.count("cookie-a") == 2


def test_the_cache_holds_at_most_two_generations() -> None:
    keyer = CountingKeyer(cache_size=50)
    for n in range(1000):
        _ask(keyer, f"order-{n}")
    assert len(keyer._cache) + len(keyer._older) <= 100


def test_cached_outcomes_are_the_outcomes_of_keying_afresh() -> None:
    cached = CountingKeyer(cache_size=4)
    values = [f"visitor-{n % 6}" for n in range(60)] + ["null", "  ", "x" * 300]
    for value in values:
        fresh = IdentityKeyer(b"secret", "DE", cache_size=4)
        assert cached.key_all([(IdKind.ANONYMOUS, value, False)]) == fresh.key_all(
            [(IdKind.ANONYMOUS, value, False)]
        )
    assert len(cached.keyed) < len(values)
