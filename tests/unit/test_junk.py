"""Junk identifiers: the dummy values typed for "none" must never link two persons."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bestand.identity import normalize_email, normalize_phone
from bestand.identity.junk import (
    _FICTIONAL_PHONES,
    DEFAULT_JUNK_EMAIL_PATTERNS,
    DUMMY_EMAIL_LOCAL_PARTS,
    JUNK_VALUES,
    JunkRules,
    fake_number_reason,
    fake_phone_reason,
    junk_value_reason,
)

RULES = JunkRules.default()


def _mixed_case(value: str, mask: list[bool]) -> str:
    padded = (mask + [False] * len(value))[: len(value)]
    return "".join(c.upper() if up else c for c, up in zip(value, padded, strict=True))


# --- e-mail ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "noemail@shop.de",
        "no-email@shop.de",
        "no.email@web.de",
        "nomail@gmx.de",
        "keine@shop.de",
        "keinemail@shop.de",
        "keine.email@shop.de",
        "kein@shop.de",
        "ohne@shop.de",
        "none@shop.de",
        "null@shop.de",
        "guest@shop.com",
        "gast@shop.de",
        "kunde@shop.de",
        "kunden@shop.de",
        "customer@shop.com",
        "test@firma.de",
        "dummy@firma.de",
        "anonymous@shop.com",
        "anonym@shop.de",
        "noreply@shop.de",
        "no-reply@shop.de",
        "donotreply@shop.de",
        "asdf@web.de",
        "x@web.de",
        "xx@web.de",
        "xxx@web.de",
    ],
)
def test_dummy_local_parts_are_junk(raw: str) -> None:
    reason = RULES.email_reason(normalize_email(raw))
    assert reason is not None
    assert reason.startswith(("dummy e-mail local part", "junk e-mail pattern"))


def test_the_reason_names_the_dummy_local_part() -> None:
    assert RULES.email_reason("noemail@shop.de") == "dummy e-mail local part 'noemail'"


def test_gmail_dots_and_plus_do_not_hide_a_dummy() -> None:
    # normalize_email makes 'No.Email+shop@gmail.com' into 'noemail@gmail.com'
    assert RULES.email_reason(normalize_email("No.Email+shop@gmail.com")) is not None
    # elsewhere the +suffix stays in the address but not in the dummy check
    assert RULES.email_reason(normalize_email("noemail+shop@web.de")) is not None


@pytest.mark.parametrize(
    "raw",
    [
        "a@a.de",
        "a@a.com",
        "test@test.de",
        "mail@mail.de",
        "email@email.com",
        "abc@abc.de",
        "info@example.com",
        "info@example.org",
        "kontakt@example.net",
        "aaa@web.de",
        "0@web.de",
        "000@web.de",
        "max.mustermann@web.de",
        "erika_mustermann@gmx.de",
    ],
)
def test_junk_patterns(raw: str) -> None:
    reason = RULES.email_reason(normalize_email(raw))
    assert reason is not None


@pytest.mark.parametrize(
    "raw",
    [
        "foo@mailinator.com",
        "foo@trashmail.de",
        "foo@trashmail.com",
        "foo@wegwerfmail.de",
        "foo@10minutemail.com",
        "foo@sub.mailinator.com",
    ],
)
def test_disposable_domains(raw: str) -> None:
    reason = RULES.email_reason(normalize_email(raw))
    assert reason is not None
    assert reason.startswith("disposable e-mail domain")


@pytest.mark.parametrize(
    "raw",
    [
        "hans.mueller@web.de",
        "jane.doe@example.com",  # example.* addresses are normal in this project's tests
        "user@example.com",
        "a@example.com",  # a single letter other than x can be a real mailbox
        "a@b.de",
        "janesaoirse@gmail.com",
        "testa@firma.de",  # only the whole local part counts
        "mail@firma.de",
        "info@firma.de",
        "kunde.mueller@web.de",
        "foo@notmailinator.com",
    ],
)
def test_real_addresses_are_fine(raw: str) -> None:
    assert RULES.email_reason(normalize_email(raw)) is None


def test_extra_patterns_from_configuration() -> None:
    rules = JunkRules.default([r".*@ourshop\.de"])
    assert rules.email_reason("hans@ourshop.de") == r"junk e-mail pattern '.*@ourshop\.de'"
    assert rules.email_reason("hans@web.de") is None
    assert len(rules.email_patterns) == len(DEFAULT_JUNK_EMAIL_PATTERNS) + 1


def test_an_invalid_extra_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"\(unclosed"):
        JunkRules.default(["(unclosed"])


def test_default_patterns_compile() -> None:
    for pattern in DEFAULT_JUNK_EMAIL_PATTERNS:
        re.compile(pattern)


DOMAINS = st.sampled_from(["web.de", "gmx.net", "shop.de", "firma.com"])


@given(st.sampled_from(sorted(DUMMY_EMAIL_LOCAL_PARTS)), DOMAINS, st.lists(st.booleans()))
def test_email_junk_is_case_insensitive(local: str, domain: str, mask: list[bool]) -> None:
    address = _mixed_case(f"{local}@{domain}", mask)
    assert RULES.email_reason(address) == RULES.email_reason(address.lower())
    assert RULES.email_reason(address) is not None


@given(st.emails(), st.lists(st.booleans()))
def test_any_email_case_does_not_change_the_verdict(address: str, mask: list[bool]) -> None:
    mixed = _mixed_case(address, mask)
    assert RULES.email_reason(mixed) == RULES.email_reason(address.lower())


# --- any value ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "null",
        "NULL",
        "None",
        "anonymous",
        "unknown",
        "n/a",
        "N/A",
        "-",
        "0",
        "000",
        "x",
        "XXX",
        "test",
        "keine",
        "kein",
        "ohne",
        "Gast",
        "guest",
        "k.A.",
        "<null>",
        "(none)",
        '"n/a"',
        "  ",
        "",
        "---",
        "?!",
        "0000 0000",
        "00-00",
        "xxxxxx",
    ],
)
def test_junk_values(raw: str) -> None:
    assert RULES.value_reason(raw) is not None


@pytest.mark.parametrize("raw", ["K-100", "Hans", "1", "10115", "0815", "Na", "Nix", "x1", "a"])
def test_real_values(raw: str) -> None:
    assert RULES.value_reason(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty value"),
        (" NULL ", "placeholder value 'null'"),
        ("...", "only punctuation"),
        ("0000", "only zeros"),
        ("xxxxx", "only the letter x"),
    ],
)
def test_value_reasons(raw: str, reason: str) -> None:
    assert junk_value_reason(raw) == reason


@given(
    st.sampled_from(sorted(JUNK_VALUES)), st.lists(st.booleans()), st.sampled_from(["", " ", "\t"])
)
def test_value_junk_is_case_insensitive(value: str, mask: list[bool], pad: str) -> None:
    assert junk_value_reason(f"{pad}{_mixed_case(value, mask)}{pad}") is not None


@given(st.text())
def test_value_reason_never_fails(value: str) -> None:
    reason = junk_value_reason(value)
    assert reason is None or reason


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0151 11111111", "all subscriber digits are equal"),
        ("0176 22222222", "all subscriber digits are equal"),
        ("030 5555555", "all subscriber digits are equal"),
        ("0151 1111111", "all subscriber digits are equal"),  # a digit short: still nobody's
        # Not a number of Germany's plan, and all of it a run: a placeholder, not a typo.
        ("0123456789", "not a number of its region, and a digit run"),
        ("01234567890", "not a number of its region, and a digit run"),
        ("030 23125 000", "German drama number (Berlin)"),
        ("089 99998 123", "German drama number (München)"),
        ("0152 28817386", "German drama number (mobile)"),
        ("+1 202 555 0123", "North American fictional 555-01xx number"),
        ("+44 20 7946 0123", "UK drama number"),
    ],
)
def test_numbers_that_cannot_be_anyones(raw: str, reason: str) -> None:
    assert fake_phone_reason(normalize_phone(raw, "DE")) == reason


@pytest.mark.parametrize(
    "raw",
    [
        "0151 23847561",
        "0176 40219837",
        "030 90182735",
        "089 2180 2342",
        "+43 664 3917254",
        "+1 202 555 1234",  # 555 outside 01xx is assigned (555-1212 is directory assistance)
        "+1 212 736 5000",
        # Memorable shapes are real numbers too: left to the cardinality rule.
        "0171 2345678",
        "030 1234567",
        "0151 87654321",
        "0151 12121212",
        "0151 51515151",
        "+33 1 23 45 67 89",
        "+1 234 567 8901",  # UID2's published phone example
    ],
)
def test_real_phones(raw: str) -> None:
    assert fake_phone_reason(normalize_phone(raw, "DE")) is None


def test_a_non_e164_string_is_not_a_phone() -> None:
    assert fake_phone_reason("0151 2384756") == "not an E.164 number"


@given(st.text(alphabet="0123456789", min_size=6, max_size=12))
def test_fake_phone_reason_never_fails_on_possible_numbers(digits: str) -> None:
    try:
        e164 = normalize_phone(f"+49{digits}", "DE")
    except ValueError:
        return
    reason = fake_phone_reason(e164)
    assert reason is None or reason


def _reason_splitting_always(number: phonenumbers.PhoneNumber) -> str | None:
    """The subscriber rule as first written: the area code split off for every valid number."""
    national = phonenumbers.national_significant_number(number)
    subscriber = national[phonenumbers.length_of_national_destination_code(number) :]
    if len(subscriber) >= 5 and len(set(subscriber)) == 1:
        return "all subscriber digits are equal"
    return None


def test_the_tail_shortcut_decides_as_splitting_every_number_would() -> None:
    """Numbers ending in one digit repeated (as the whole subscriber part and as its tail
    only), other shapes, and random numbers."""
    rng = random.Random(5)
    ascending = "0123456789" * 2
    shapes = [
        shape[:size]
        for size in range(5, 10)
        for shape in (
            *(d * size for d in "0123456789"),
            *(ascending[i:] for i in range(10)),
            *(block * size for block in ("12", "47", "123", "905")),
        )
    ]
    prefixes = ["+49151", "+4930", "+4989", "+43664", "+331", "+1202", "+4420"]
    numbers = []
    for prefix in prefixes:
        for shape in shapes:
            middle = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 3)))
            numbers += [prefix + shape, prefix + middle + shape]
        digits = ("".join(rng.choice("0123456789") for _ in range(8)) for _ in range(300))
        numbers += [prefix + d for d in digits]
    checked = fake = 0
    for raw in numbers:
        number = phonenumbers.parse(raw, None)
        if not phonenumbers.is_valid_number(number):
            continue
        got = fake_number_reason(number)
        if got in {why for _, why in _FICTIONAL_PHONES}:
            continue  # reserved fiction ranges are checked first, as before
        expected = _reason_splitting_always(number)
        assert got == expected, raw
        checked += 1
        fake += expected is not None
    assert checked > 1000, checked
    assert fake > 50, fake


def test_the_shops_own_placeholder_numbers() -> None:
    rules = JunkRules.default((), [r"\+49301234500\d"])
    assert rules.phone_reason("+493012345001") == r"junk phone pattern '\+49301234500\d'"
    assert rules.phone_reason("+493012345011") is None
    assert JunkRules.default().phone_reason("+493012345001") is None


def test_an_invalid_phone_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"junk phone pattern '\[0-'"):
        JunkRules.default((), ["[0-"])
