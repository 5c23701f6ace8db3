"""The compiled keyer gives every event's identifiers exactly the tokens, junk and refusals
the Python keyer gives.

It normalizes and checks plain values itself: a value it keyed differently would split a
customer into two persons across an upgrade, and a junk value it missed would merge
strangers. So it is held to the Python keyer on a simulated shop's every identifier, on the
edge cases of each rule, and on generated values.
"""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.events import InvalidEvent, decode_event
from bestand.identity import IdentityKeyer, raw_identifiers
from bestand.identity.junk import JunkRules
from bestand.identity.kinds import IdKind
from bestand.ingest.producer import topic_for
from bestand.settings import Settings
from bestand.simulate import simulate

pytest.importorskip("bestand_native")

SECRET = b"test-secret"
RULES = JunkRules.default(["vorname\\.nachname@.+"], [r"\+4930123456\d"])


def _pair() -> tuple[IdentityKeyer, IdentityKeyer]:
    python = IdentityKeyer(SECRET, "DE", RULES, compiled=False)
    compiled = IdentityKeyer(SECRET, "DE", RULES, compiled=True)
    assert compiled.compiled
    assert not python.compiled
    return python, compiled


def test_a_simulated_shops_identifiers_key_the_same() -> None:
    settings_ = Settings()
    kinds = {
        settings_.topic_clickstream: "clickstream",
        settings_.topic_orders: "orders",
        settings_.topic_email: "email",
        settings_.topic_customer: "customer",
    }
    python, compiled = _pair()
    now, compared, skipped = time.time(), 0, 0
    for event in simulate(persons=1500, seed=5).events:
        kind = kinds[topic_for(event, settings_)]
        try:
            decoded = decode_event(kind, orjson.dumps(event), max_bytes=65536, now=now)
        except InvalidEvent:  # the shop's deliberately bad input
            skipped += 1
            continue
        ids = raw_identifiers(decoded)
        assert compiled.key_tokens(ids) == python.key_tokens(ids), ids
        compared += 1
    assert compared > 10_000
    assert skipped < 100


EDGE_CASES: dict[IdKind, list[str]] = {
    IdKind.EMAIL: [
        "Anna.Koch+shop@GoogleMail.com",
        " anna koch@gmail.com ",
        "+@gmail.com",
        "...@gmail.com",
        "a@b",
        "a@@b.de",
        "@b.de",
        "a@",
        "a@-b.de",
        "a@b-.de",
        "a@b..de",
        "a@b_c.de",
        "noemail@shop.de",
        "kunde+1@shop.de",
        "test@test.com",
        "xx@shop.de",
        "max.mustermann@web.de",
        "vorname.nachname@firma.de",
        "info@example.com",
        "a@mailinator.com",
        "a@sub.trashmail.net",
        "null",
        "N/A",
        "anna@bücher.de",
        "ANNA@EXAMPLE.ORG",
        "anna\x1f@example.org",
    ],
    IdKind.DEVICE: [
        "00000000-0000-0000-0000-000000000000",
        "0000",
        "-",
        " AbCd-1234 ",
        "",
        "   ",
        "null",
    ],
    IdKind.LOYALTY: ["12 34-56", " - ", "ab-cd", "", "0000", "x", "null"],
    IdKind.PAYMENT: ["Xy3kQ", " Xy3kQ ", "null", "(none)", "000", "", "  ", "-", "tok_0x"],
    IdKind.CUSTOMER: [
        "C-1",
        "  C-1  ",
        "",
        " ",
        "null",
        "<NULL>",
        '"N/A"',
        "k.A.",
        "0-0",
        "__",
        "xXx",
        "X",
        "12x",
        "\x1fC-1",
        "C\x001",
        "Grüße",
        "\u00a0C-1\u00a0",
    ],
    IdKind.PHONE: ["0171 2345678", "+49 30 1234567", "+4930123456 7", "null", "12", "0"],
}


@pytest.mark.parametrize("kind", list(EDGE_CASES))
def test_the_edge_cases_of_each_rule_key_the_same(kind: IdKind) -> None:
    python, compiled = _pair()
    for value in EDGE_CASES[kind]:
        for other in (IdKind.ANONYMOUS, IdKind.ORDER, IdKind.NAME, kind):
            ids = [(kind, value, False), (other, value, False)]
            assert compiled.key_tokens(ids) == python.key_tokens(ids), ids


def test_digests_and_repeats_key_the_same() -> None:
    python, compiled = _pair()
    digest = "a" * 64
    ids = [
        (IdKind.EMAIL, digest, True),
        (IdKind.EMAIL, "not a digest", True),
        (IdKind.ANONYMOUS, "cookie", False),
        (IdKind.ANONYMOUS, " cookie ", False),  # the same token twice: kept once
        (IdKind.CUSTOMER, "null", False),
        (IdKind.EMAIL, "noemail@shop.de", False),
        (IdKind.EMAIL, "NOEMAIL@shop.de", False),  # the same junk twice: flagged once
        (IdKind.DEVICE, "0000", False),  # refused, and junk: dropped without a word
        (IdKind.EMAIL, "anna@b", False),
        (IdKind.EMAIL, " anna@b ", False),  # refused twice: both counted, logged once
    ]
    tokens, rejected, junk, refused = compiled.key_tokens(ids)
    assert (tokens, rejected, junk, refused) == python.key_tokens(ids)
    assert len(tokens) == 2
    assert len(junk) == 2
    assert len(rejected) == 3
    assert [why for _, why in refused] == [
        "not a SHA-256 digest in hex or base64",
        "'b' is not a valid e-mail domain",
    ]


_ASCII = st.text(alphabet=st.sampled_from(list(" @.-+_0xXaAbz9()<>\"'`/#")), max_size=14)
_EDGES = [value for values in EDGE_CASES.values() for value in values]
_VALUES = st.one_of(_ASCII, st.text(max_size=12), st.sampled_from(_EDGES))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([k for k in IdKind if k is not IdKind.PHONE]), _VALUES),
        min_size=1,
        max_size=5,
    )
)
def test_generated_values_key_the_same(values: list[tuple[IdKind, str]]) -> None:
    python, compiled = _pair()
    ids = [(kind, value, False) for kind, value in values]
    assert compiled.key_tokens(ids) == python.key_tokens(ids)


class _Counting(IdentityKeyer):
    """Counts what the compiled keyer asks of the Python one."""

    asked: list[str]

    def _token_outcome(self, kind: IdKind, value: str, is_sha256: bool):  # type: ignore[no-untyped-def]
        self.asked.append(value)
        return super()._token_outcome(kind, value, is_sha256)


def test_the_compiled_keyer_keeps_outcomes_and_asks_python_only_what_it_does_not_handle() -> None:
    keyer = _Counting(SECRET, "DE", RULES, cache_size=2, compiled=True)
    keyer.asked = []
    for _ in range(3):
        keyer.key_tokens([(IdKind.PHONE, "0171 2345678", False), (IdKind.CUSTOMER, "C-1", False)])
    assert keyer.asked == ["0171 2345678"]  # a phone is Python's, and kept once keyed
    keyer.key_tokens([(IdKind.CUSTOMER, "Grüße", False), (IdKind.EMAIL, "a" * 64, True)])
    assert keyer.asked[1:] == ["Grüße", "a" * 64]
    # Two generations of two outcomes each: three new values later the phone is gone.
    for n in range(3):
        keyer.key_tokens([(IdKind.CUSTOMER, f"C-{n + 2}", False)])
    assert keyer._native.cached() <= 4
    keyer.key_tokens([(IdKind.PHONE, "0171 2345678", False)])
    assert keyer.asked[-1] == "0171 2345678"
