"""Normalize identifiers so that spelling variants of one identifier become one string.

E-mail follows the rules that UID2 and Google Customer Match publish for hashed e-mail:
trim, lowercase, and for Gmail addresses drop dots and any ``+suffix`` of the local part.
For linking, two more: whitespace anywhere in an address goes (``anna.koch @gmail.com`` is
what a customer typed for ``anna.koch@gmail.com``), and ``googlemail.com``, Google's German
alias, becomes ``gmail.com`` (one mailbox under two names). Audience exports keep each
platform's own rule (:mod:`bestand.audience.forms`).
Phones become E.164 (a country code and the national digits), also a number that is
possible for its region but not valid there: a customer who types their mobile with a
digit missing types it the same way next time. Control characters are never part of an
identifier. Everything here is pure and raises :class:`InvalidIdentifier`.
"""

from __future__ import annotations

import re

import phonenumbers

from bestand.identity.errors import InvalidIdentifier
from bestand.identity.junk import junk_value_reason

#: Domains whose mailboxes ignore dots and ``+suffix`` in the local part.
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
#: Domains that are another name of one mailbox domain, folded for linking.
MAIL_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
#: What a person types or pastes as space: whitespace, and the invisible zero-width spaces.
_SPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
#: Control characters (C0 but tab, newline and carriage return, DEL, C1): no one types them,
#: and a NUL or a separator inside an identifier would end up inside keys and records.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def refuse_control(raw: str, what: str) -> None:
    """Raise :class:`InvalidIdentifier` when ``raw`` holds a control character."""
    if _CONTROL.search(raw):
        raise InvalidIdentifier(f"{what} cannot contain control characters")


_EMAIL_DOMAIN = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)


def without_spaces(raw: str) -> str:
    """``raw`` without whitespace and zero-width spaces anywhere."""
    return _SPACE.sub("", raw)


def normalize_email(raw: str, *, fold_alias: bool = True) -> str:
    """Return the normalized form of an e-mail address (UID2 / Google rules, spaces removed);
    with ``fold_alias``, an alias domain (``googlemail.com``) becomes its mailbox domain."""
    refuse_control(raw, "an e-mail address")
    value = without_spaces(raw).lower()
    if value.count("@") != 1:
        raise InvalidIdentifier("an e-mail address needs exactly one '@'")
    local, domain = value.split("@")
    if not local or not domain:
        raise InvalidIdentifier("an e-mail address needs a local part and a domain")
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
    if fold_alias:
        domain = MAIL_DOMAIN_ALIASES.get(domain, domain)
    return f"{local}@{domain}"


#: Digits a number the numbering plan does not know needs to be kept: shorter ones are
#: extensions and service codes, not a person's number.
_MIN_UNKNOWN_DIGITS = 6


def parse_phone(raw: str, default_region: str) -> phonenumbers.PhoneNumber:
    """A phone number of a possible length for its region; a national number is read in
    ``default_region``.

    Not only valid numbers: one typed with a digit too few or too many (``0171 234567``)
    fails the numbering plan, but a customer types it the same way on the next order, so it
    still links (and stays subject to the junk rules). A length no number of the region can
    have is refused.
    """
    refuse_control(raw, "a phone number")
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"not a phone number: {exc}") from None
    if phonenumbers.is_valid_number(number):
        return number
    national = phonenumbers.national_significant_number(number)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE or len(national) < _MIN_UNKNOWN_DIGITS:
        raise InvalidIdentifier("not a possible phone number for its region (its length)")
    if national.startswith("0"):
        # A zero after the country code is a trunk prefix typed twice, or zeros for a number.
        raise InvalidIdentifier("not a phone number for its region (a zero after its code)")
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
    refuse_control(value, "an identifier")
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
    refuse_control(value, "a payment fingerprint")
    reason = junk_value_reason(value)
    if reason is not None:
        raise InvalidIdentifier(f"not a payment fingerprint: {reason}")
    return value


def normalize_loyalty_card(raw: str) -> str:
    """Normalize a loyalty card number: printed groupings (spaces, dashes) do not matter."""
    refuse_control(raw, "a loyalty card number")
    value = re.sub(r"[\s\-]", "", raw).upper()
    if not value:
        raise InvalidIdentifier("a loyalty card number cannot be empty")
    return value
