"""Normalization follows the published UID2 and Google hashed-e-mail rules."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bestand.identity import InvalidIdentifier, normalize_email, normalize_phone
from bestand.identity.normalize import (
    normalize_device_id,
    normalize_loyalty_card,
    normalize_payment_fingerprint,
    normalize_token,
)

# (original, normalized, SHA-256 hex) from UID2's "Normalization Examples for Email".
UID2_EMAIL_EXAMPLES = [
    (
        "MyEmail@example.com",
        "myemail@example.com",
        "16c18d336f0b250f0e2d907452ceb9658a74ecdae8bc94864c23122a72cc27a5",
    ),
    (
        "MYEMAIL@example.com",
        "myemail@example.com",
        "16c18d336f0b250f0e2d907452ceb9658a74ecdae8bc94864c23122a72cc27a5",
    ),
    (
        "My.Email@example.com",
        "my.email@example.com",
        "e22b53bc6f871274f3a62ab37a3caed7214fc14d676215a96a242fcfada1c81f",
    ),
    (
        "JANESAOIRSE@example.com",
        "janesaoirse@example.com",
        "d6670e7a92007f1b5ff785f1fc81e53aa6d3d7bd06bdf5c473cdc7286c284b6d",
    ),
    (
        "Jane.Saoirse@example.com",
        "jane.saoirse@example.com",
        "b196432c7b989a2ca91c83799957c515da53e6c13abf20b78fea94f117e90bf8",
    ),
    (
        "JaneSaoirse+Work@example.com",
        "janesaoirse+work@example.com",
        "28aaee4815230cd3b4ebd88c515226550666e91ac019929e3adac3f66c288180",
    ),
    (
        "JANE.SAOIRSE@gmail.com",
        "janesaoirse@gmail.com",
        "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f",
    ),
    (
        "Jane.Saoirse@gmail.com",
        "janesaoirse@gmail.com",
        "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f",
    ),
    (
        "JaneSaoirse+Work@gmail.com",
        "janesaoirse@gmail.com",
        "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f",
    ),
    (
        "user@example.com",
        "user@example.com",
        "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514",
    ),
]


@pytest.mark.parametrize(("raw", "normalized", "sha256_hex"), UID2_EMAIL_EXAMPLES)
def test_uid2_email_examples(raw: str, normalized: str, sha256_hex: str) -> None:
    assert normalize_email(raw) == normalized
    assert hashlib.sha256(normalized.encode()).hexdigest() == sha256_hex


def test_uid2_base64_form_of_the_user_example() -> None:
    digest = hashlib.sha256(normalize_email("user@example.com").encode()).digest()
    assert base64.b64encode(digest).decode() == "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Jane.Doe@gmail.com ", "janedoe@gmail.com"),  # UID2: trim, lowercase, drop dots
        ("janedoe+home@gmail.com", "janedoe@gmail.com"),  # UID2: drop +suffix on gmail.com
        ("j.a.n.e.doe+x+y@googlemail.com", "janedoe@gmail.com"),  # Google's alias, one mailbox
        ("jane.doe+home@web.de", "jane.doe+home@web.de"),  # other providers keep dots and plus
    ],
)
def test_gmail_rules(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "no-at-sign",
        "two@@example.com",
        "a@b@c.de",
        "@example.com",
        "jane@",
        "ja ne@@x.de",
        "jane@-bad-.de",
        "+tag@gmail.com",
        "jane@nodot",
    ],
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("0151 1234 5678", "DE", "+4915112345678"),
        ("+49 (151) 12345678", "DE", "+4915112345678"),
        ("0049 151 12345678", "DE", "+4915112345678"),
        ("030 1234567", "DE", "+49301234567"),
        ("1 (234) 567-8901", "US", "+12345678901"),  # UID2's US example
        ("(02) 1234 5678", "AU", "+61212345678"),  # UID2's Sydney example
        ("+43 664 1234567", "DE", "+436641234567"),  # a foreign number keeps its country
    ],
)
def test_phone_to_e164(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


def test_uid2_phone_hash_example() -> None:
    digest = hashlib.sha256(b"+12345678901").digest()
    assert digest.hex() == "10e6f0b47054a83359477dcb35231db6de5c69fb1816e1a6b98e192de9e5b9ee"
    assert base64.b64encode(digest).decode() == "EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="


@pytest.mark.parametrize(
    "raw",
    ["", "12", "not a phone", "+49 000", "0000000000000000000", "+49 0000 0000", "030 12"],
)
def test_impossible_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_phone(raw, "DE")


def test_tokens_and_cards() -> None:
    assert normalize_token("  K-100 ") == "K-100"
    assert normalize_loyalty_card("1234 5678-90ab") == "1234567890AB"
    with pytest.raises(InvalidIdentifier):
        normalize_token("   ")


# --- payment fingerprints, device ids, robustness ----------------------------------------------


def test_payment_fingerprint_is_trimmed_and_keeps_case() -> None:
    assert normalize_payment_fingerprint("  fp_1Ab2Cd3 \n") == "fp_1Ab2Cd3"
    assert normalize_payment_fingerprint("Xy3Q") != normalize_payment_fingerprint("xy3q")


@pytest.mark.parametrize("raw", ["", "   ", "null", "NONE", "n/a", "-", "0", "000000", "<null>"])
def test_empty_or_junk_payment_fingerprints_are_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_payment_fingerprint(raw)


def test_device_id_is_lowercased() -> None:
    assert (
        normalize_device_id(" 6D92078A-8246-4BA4-AE5B-76104861E7DC ")
        == "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    )


@pytest.mark.parametrize(
    "raw", ["00000000-0000-0000-0000-000000000000", " 00000000000000000000000000000000 "]
)
def test_the_limit_ad_tracking_device_id_is_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier, match="all-zero"):
        normalize_device_id(raw)


def test_an_unencodable_idn_domain_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_email(f"jane@{'ä' * 70}.de")  # an IDNA label longer than 63


EMAILISH = st.text(alphabet=st.sampled_from("aAzZ09.+-_@ äß\u00a0\t\x00\u200b.xn--"), max_size=40)


@given(st.one_of(st.text(), EMAILISH, st.emails()))
def test_every_string_is_an_email_or_invalid(raw: str) -> None:
    try:
        normalized = normalize_email(raw)
    except InvalidIdentifier:
        return
    assert normalize_email(normalized) == normalized


PHONEISH = st.text(alphabet=st.sampled_from("0123456789 +-()/.xX#*\u00a0"), max_size=30)


@given(st.one_of(st.text(), PHONEISH))
def test_every_string_is_a_phone_or_invalid(raw: str) -> None:
    try:
        e164 = normalize_phone(raw, "DE")
    except InvalidIdentifier:
        return
    assert e164.startswith("+")
    assert normalize_phone(e164, "DE") == e164


# --- what customers really type -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("anna.koch @gmail.com", "annakoch@gmail.com"),
        ("anna.koch@ gmail.com", "annakoch@gmail.com"),
        ("anna koch@web.de", "annakoch@web.de"),
        ("anna.koch@web .de", "anna.koch@web.de"),
        ("anna.koch\u200b@web.de", "anna.koch@web.de"),  # a pasted zero-width space
        ("\tanna.koch@web.de\n", "anna.koch@web.de"),
    ],
)
def test_spaces_anywhere_in_an_email_go(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    ["nul\u0000byte@example.com", "a\u0007b@example.com", "ab@exa\u001emple.com", "a\u0085@x.de"],
)
def test_control_characters_are_never_part_of_an_email(raw: str) -> None:
    with pytest.raises(InvalidIdentifier, match="control characters"):
        normalize_email(raw)


@pytest.mark.parametrize(
    "normalize",
    [normalize_token, normalize_device_id, normalize_payment_fingerprint, normalize_loyalty_card],
)
def test_control_characters_are_never_part_of_an_identifier(normalize: Any) -> None:
    with pytest.raises(InvalidIdentifier, match="control characters"):
        normalize("K-1\u0000")


def test_a_phone_with_a_control_character_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="control characters"):
        normalize_phone("0171\u0000 2345678", "DE")


def test_googlemail_is_gmail_for_linking_but_not_for_a_platform() -> None:
    assert normalize_email("Jana.Schmidt+shop@GoogleMail.com") == "janaschmidt@gmail.com"
    assert normalize_email("janaschmidt@gmail.com") == "janaschmidt@gmail.com"
    assert (
        normalize_email("Jana.Schmidt+shop@googlemail.com", fold_alias=False)
        == "janaschmidt@googlemail.com"
    )


@pytest.mark.parametrize(
    ("spellings", "e164"),
    [
        # A German mobile typed with a digit missing: not valid, but possible, and the same
        # number each time the customer types it.
        (("0171 234567", "+49 171 234567", "0049 (171) 23 45 67", "0171/234567"), "+49171234567"),
        (("0151 1234567", "+491511234567"), "+491511234567"),
        # A digit too many.
        (("0151 123456789", "+49 151 123456789"), "+49151123456789"),
    ],
)
def test_a_possible_number_that_is_not_valid_keeps_its_digits(
    spellings: tuple[str, ...], e164: str
) -> None:
    assert {normalize_phone(raw, "DE") for raw in spellings} == {e164}


@pytest.mark.parametrize("raw", ["0171 2345678", "030 1234567", "+1 234 567 8901", "0151 87654321"])
def test_numbers_with_digit_runs_are_numbers(raw: str) -> None:
    assert normalize_phone(raw, "DE").startswith("+")
