"""Normalize identifiers so that spelling variants of one identifier become one string.

E-mail follows the rules that UID2 and Google Customer Match publish for hashed e-mail:
trim, lowercase, and for Gmail addresses drop dots and any ``+suffix`` of the local part.
Phones become E.164. Everything here is pure and raises :class:`InvalidIdentifier`.
"""

from __future__ import annotations

import re

import phonenumbers

from bestand.identity.errors import InvalidIdentifier
from bestand.identity.junk import junk_value_reason

#: Domains whose mailboxes ignore dots and ``+suffix`` in the local part.
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_SPACE = re.compile(r"\s+")
_EMAIL_DOMAIN = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)


def normalize_email(raw: str) -> str:
    """Return the normalized form of an e-mail address (UID2 / Google rules)."""
    value = raw.strip().lower()
    if value.count("@") != 1:
        raise InvalidIdentifier("an e-mail address needs exactly one '@'")
    local, domain = value.split("@")
    if not local or not domain:
        raise InvalidIdentifier("an e-mail address needs a local part and a domain")
    if _SPACE.search(value):
        raise InvalidIdentifier("an e-mail address cannot contain spaces")
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:  # an IDN label that IDNA cannot encode (too long, forbidden code point)
        ascii_domain = ""
    if not _EMAIL_DOMAIN.match(ascii_domain):
        raise InvalidIdentifier(f"'{domain}' is not a valid e-mail domain")
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise InvalidIdentifier("the Gmail local part is empty after normalization")
    return f"{local}@{domain}"


def parse_phone(raw: str, default_region: str) -> phonenumbers.PhoneNumber:
    """A valid phone number; a national number is read in ``default_region``."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("not a valid phone number for its region")
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    """A parsed number in E.164 (``+4915112345678``)."""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(raw: str, default_region: str) -> str:
    """Return a phone number in E.164 (``+4915112345678``); a national number uses the region."""
    return e164(parse_phone(raw, default_region))


def normalize_token(raw: str) -> str:
    """Normalize an opaque id (customer id, cookie, order id): trimmed, inner spaces kept."""
    value = raw.strip()
    if not value:
        raise InvalidIdentifier("an identifier cannot be empty")
    return value


#: The advertising id a device reports when its user limited ad tracking: shared by millions.
ZERO_ADVERTISING_ID = "00000000-0000-0000-0000-000000000000"


def normalize_device_id(raw: str) -> str:
    """Normalize a mobile advertising id (IDFA / GAID are case-insensitive UUIDs).

    The all-zero id (in any grouping) is refused: it is what every device with limited ad
    tracking sends, so it would link all of them.
    """
    value = normalize_token(raw).lower()
    if not value.replace("-", "").strip("0"):
        raise InvalidIdentifier("the all-zero advertising id names no device (limit ad tracking)")
    return value


def normalize_payment_fingerprint(raw: str) -> str:
    """Normalize a payment provider's card or account fingerprint: trimmed, case kept.

    Provider tokens are opaque and case-sensitive (``Xy3…`` and ``xy3…`` are different
    cards), so only surrounding whitespace goes. Placeholders ('null', '-', '000') are
    refused: a shop that sends them for every cash order would link all its cash payers.
    """
    value = raw.strip()
    if not value:
        raise InvalidIdentifier("a payment fingerprint cannot be empty")
    reason = junk_value_reason(value)
    if reason is not None:
        raise InvalidIdentifier(f"not a payment fingerprint: {reason}")
    return value


def normalize_loyalty_card(raw: str) -> str:
    """Normalize a loyalty card number: printed groupings (spaces, dashes) do not matter."""
    value = re.sub(r"[\s\-]", "", raw).upper()
    if not value:
        raise InvalidIdentifier("a loyalty card number cannot be empty")
    return value
