"""Identifiers are stored as keyed hashes: stable, secret-dependent, reachable from SHA-256."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from bestand.identity import IdentityKeyer, IdKind, InvalidIdentifier, KeyedId, parse_sha256
from bestand.identity.hashing import KEY_CHARS, keyed_hash, person_id_for


def test_raw_and_sha256_forms_reach_the_same_key() -> None:
    keyer = IdentityKeyer(b"secret-one", "DE")
    digest = hashlib.sha256(b"janesaoirse@gmail.com").digest()
    by_raw = keyer.key(IdKind.EMAIL, "Jane.Saoirse+Work@GMAIL.com")
    assert keyer.key_sha256(IdKind.EMAIL, digest.hex()) == by_raw
    assert keyer.key_sha256(IdKind.EMAIL, digest.hex().upper()) == by_raw
    assert keyer.key_sha256(IdKind.EMAIL, base64.b64encode(digest).decode()) == by_raw


def test_the_key_depends_on_the_secret_and_the_kind() -> None:
    digest = hashlib.sha256(b"12345").digest()
    assert keyed_hash(b"a", IdKind.CUSTOMER, digest) != keyed_hash(b"b", IdKind.CUSTOMER, digest)
    assert keyed_hash(b"a", IdKind.CUSTOMER, digest) != keyed_hash(b"a", IdKind.ORDER, digest)
    assert keyed_hash(b"a", IdKind.CUSTOMER, digest) == keyed_hash(b"a", IdKind.CUSTOMER, digest)


def test_keys_are_short_and_url_safe() -> None:
    key = IdentityKeyer(b"s", "DE").key(IdKind.EMAIL, "user@example.com")
    assert len(key.hash) == 16  # 96 bits
    assert set(key.hash) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "user" not in key.token
    assert KeyedId.from_token(key.token) == key


def test_phone_spellings_reach_one_key() -> None:
    keyer = IdentityKeyer(b"s", "DE")
    keys = {
        keyer.key(IdKind.PHONE, raw)
        for raw in ("0151 12345678", "+4915112345678", "0049-151-1234-5678")
    }
    assert len(keys) == 1


@pytest.mark.parametrize("value", ["abc", "zz" * 32, "dGVzdA==", ""])
def test_bad_digests_are_refused(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_sha256(value)


def test_key_all_keeps_good_ids_and_reports_bad_ones() -> None:
    keyer = IdentityKeyer(b"s", "DE")
    keyed = keyer.key_all(
        [
            (IdKind.EMAIL, "a@example.com", False),
            (IdKind.EMAIL, "A@Example.com", False),  # same person, kept once
            (IdKind.PHONE, "12", False),
            (IdKind.EMAIL, "noemail@shop.de", False),  # a dummy: keyed but never linking
            (IdKind.CUSTOMER, "null", False),
        ]
    )
    assert [kid.kind for kid in keyed.ids] == [IdKind.EMAIL]
    assert [kind for kind, _ in keyed.rejected] == [IdKind.PHONE]
    assert [kid.kind for kid, _ in keyed.junk] == [IdKind.EMAIL, IdKind.CUSTOMER]


def test_person_ids_are_deterministic_and_opaque() -> None:
    assert person_id_for(b"s", "e:abc|ev-1") == person_id_for(b"s", "e:abc|ev-1")
    assert person_id_for(b"s", "e:abc|ev-1") != person_id_for(b"s", "e:abc|ev-2")
    assert len(person_id_for(b"s", "x")) == 12


# UID2's published phone example: the E.164 number, its SHA-256 in hex and in Base64.
UID2_PHONE = "+12345678901"
UID2_PHONE_HEX = "10e6f0b47054a83359477dcb35231db6de5c69fb1816e1a6b98e192de9e5b9ee"
UID2_PHONE_B64 = "EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="


@pytest.mark.parametrize("raw", [UID2_PHONE, "+1 (234) 567-8901", "001 234 567 8901"])
def test_the_uid2_phone_vector_reaches_one_key_both_ways(raw: str) -> None:
    """Raw in or hash in, the number of UID2's example is one identifier (and no junk)."""
    keyer = IdentityKeyer(b"s", "DE")
    keyed = keyer.key_all([(IdKind.PHONE, raw, False)])
    assert keyed.junk == []
    assert keyed.rejected == []
    assert keyer.key_sha256(IdKind.PHONE, UID2_PHONE_HEX) == keyed.ids[0]
    assert keyer.key_sha256(IdKind.PHONE, UID2_PHONE_B64) == keyed.ids[0]


def test_googlemail_and_its_hash_of_gmail_reach_one_key() -> None:
    keyer = IdentityKeyer(b"s", "DE")
    digest = hashlib.sha256(b"janesaoirse@gmail.com").hexdigest()
    assert keyer.key(IdKind.EMAIL, "Jane.Saoirse@googlemail.com") == keyer.key_sha256(
        IdKind.EMAIL, digest
    )


def test_a_number_used_by_one_customer_links_whatever_its_shape() -> None:
    """A digit run or a digit missing: keyed, not junk (the cardinality rule decides later)."""
    keyer = IdentityKeyer(b"s", "DE")
    for raw in ("0171 2345678", "030 1234567", "0171 234567"):
        keyed = keyer.key_all([(IdKind.PHONE, raw, False)])
        assert len(keyed.ids) == 1, raw
        assert keyed.junk == [], raw
        assert keyed.rejected == [], raw


def test_one_digit_fakes_and_the_shops_placeholders_are_junk() -> None:
    from bestand.identity.junk import JunkRules

    keyer = IdentityKeyer(b"s", "DE", JunkRules.default((), [r"\+4930123450\d\d"]))
    keyed = keyer.key_all(
        [
            (IdKind.PHONE, "0151 11111111", False),
            (IdKind.PHONE, "030 12345099", False),
            (IdKind.PHONE, "0171 2345678", False),
        ]
    )
    assert [why for _, why in keyed.junk] == [
        "all subscriber digits are equal",
        r"junk phone pattern '\+4930123450\d\d'",
    ]
    assert len(keyed.ids) == 1


def test_an_earlier_releases_identifier_cut_short_is_this_releases() -> None:
    """Earlier releases kept 16 bytes (22 characters); the first 16 characters of that are
    what this release keys the same value to, so a store is cut short in place."""
    digest = hashlib.sha256(b"anna.koch@gmail.com").digest()
    mac = hmac.digest(b"change-me", IdKind.EMAIL.encode("ascii") + digest, "sha256")
    earlier = base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()
    assert len(earlier) == 22
    assert keyed_hash(b"change-me", IdKind.EMAIL, digest) == earlier[:KEY_CHARS]
