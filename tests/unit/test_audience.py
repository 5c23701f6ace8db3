"""Audience export: platform forms, segments, consent, the contact list."""

from __future__ import annotations

import io
from typing import Any

import pytest

from bestand.audience import email_form, in_segment, phone_form
from bestand.audience.contacts import Contact, ContactListError, read_contacts
from bestand.audience.segments import consent_allows
from bestand.identity import InvalidIdentifier

# SHA-256 of "user@example.com" and "+12345678901", as published with the UID2 normalization rules.
USER_HEX = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
USER_B64 = "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="
PHONE_HEX = "10e6f0b47054a83359477dcb35231db6de5c69fb1816e1a6b98e192de9e5b9ee"
PHONE_B64 = "EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="


def test_google_and_uid2_hash_the_normalized_email() -> None:
    assert email_form("  User@Example.com ", "google") == USER_HEX
    assert email_form("User@Example.com", "uid2") == USER_B64
    # Gmail: dots and +tags do not make another person, for Google and UID2 alike.
    assert email_form("Jana.Schmidt+shop@gmail.com", "google") == email_form(
        "janaschmidt@gmail.com", "google"
    )


def test_meta_only_trims_and_lowercases() -> None:
    assert email_form(" User@Example.com", "meta") == USER_HEX
    assert email_form("Jana.Schmidt@gmail.com", "meta") != email_form(
        "janaschmidt@gmail.com", "meta"
    )


def test_phone_forms() -> None:
    assert phone_form("+1 234 567 8901", "google", "DE") == PHONE_HEX
    assert phone_form("+1 (234) 567-8901", "uid2", "DE") == PHONE_B64
    meta = phone_form("+1 234 567 8901", "meta", "DE")
    assert meta != PHONE_HEX  # digits only, no "+"
    assert meta == phone_form("001 234 567 8901", "meta", "DE")


def test_invalid_identifiers_are_refused() -> None:
    with pytest.raises(InvalidIdentifier):
        email_form("not-an-email", "meta")
    with pytest.raises(InvalidIdentifier):
        phone_form("12", "google", "DE")


def answer(**fields: Any) -> dict[str, Any]:
    base = {
        "known": True,
        "existing_customer": True,
        "lifecycle_stage": "repeat",
        "consent": {},
        "value": {"band": "top30"},
    }
    return base | fields


@pytest.mark.parametrize(
    ("segment", "fields", "inside"),
    [
        ("existing", {}, True),
        ("existing", {"existing_customer": False}, False),
        ("prospects", {"existing_customer": False, "value": None}, True),
        ("repeat", {}, True),
        ("loyal", {}, False),
        ("top30", {}, True),
        ("top10", {}, False),
        ("top30", {"value": {"band": "top10"}}, True),
        ("existing", {"known": False}, False),
    ],
)
def test_segments(segment: str, fields: dict[str, Any], inside: bool) -> None:
    assert in_segment(answer(**fields), segment) is inside


def test_an_unknown_segment_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown segment"):
        in_segment(answer(), "vip")


def test_consent() -> None:
    assert consent_allows(answer(consent={"ads": True}), unstated=False)
    assert not consent_allows(answer(consent={"ads": False}), unstated=True)
    assert not consent_allows(answer(), unstated=False)
    assert consent_allows(answer(), unstated=True)


def test_contacts_from_csv_and_json_lines() -> None:
    csv_text = "Name,EMAIL,Phone\nJana,jana@example.org,\nTom,, 0151 1234567\n"
    assert list(read_contacts(io.StringIO(csv_text))) == [
        Contact(2, "jana@example.org", None),
        Contact(3, None, "0151 1234567"),
    ]
    jsonl = (
        '{"email": "a@b.de"}\n\n'
        '{"type": "order_placed", "customer": {"email": "c@d.de", "phone": "+4930123"}}\n'
        '{"type": "identify", "identifiers": {"phone": "030 123"}}\n'
    )
    assert [(c.email, c.phone) for c in read_contacts(io.StringIO(jsonl))] == [
        ("a@b.de", None),
        ("c@d.de", "+4930123"),
        (None, "030 123"),
    ]


def test_unreadable_contact_lists_say_why() -> None:
    with pytest.raises(ContactListError, match="no 'email' or 'phone' column"):
        list(read_contacts(io.StringIO("name,city\nJana,Berlin\n")))
    with pytest.raises(ContactListError, match="line 2: not JSON"):
        list(read_contacts(io.StringIO('{"email": "a@b.de"}\n{broken\n')))


def test_exports_keep_the_domain_a_platform_knows() -> None:
    """bestand links googlemail.com and gmail.com as one mailbox; no platform folds them."""
    for platform in ("google", "uid2", "meta"):
        assert email_form("jana.schmidt@googlemail.com", platform) != email_form(
            "jana.schmidt@gmail.com", platform
        )
    assert email_form("Jana.Schmidt+shop@googlemail.com", "google") == email_form(
        "janaschmidt@googlemail.com", "google"
    )


def test_spaces_inside_an_address_do_not_reach_a_platform() -> None:
    assert email_form("user @example.com", "google") == USER_HEX
    assert email_form("user@ example.com", "meta") == USER_HEX
