"""How each ad platform wants identifiers normalized and hashed before upload.

- ``google`` (Customer Match) and ``uid2``: the e-mail normalized by UID2 / Google rules
  (trimmed, lower case; for gmail.com and googlemail.com without dots and ``+tag`` in the
  local part), the phone in E.164 (``+4915112345678``); SHA-256, as hex for Google and as
  Base64 for UID2.
- ``meta`` (Custom Audiences): the e-mail trimmed and lower-cased only, the phone as digits
  with the country code and no ``+``; SHA-256 as hex.

For every platform, spaces a customer typed inside an address go (they are not part of any
mailbox), and the domain stays as typed: bestand links ``googlemail.com`` and ``gmail.com``
as one mailbox, but no platform folds them, so an export hashes the address the platform
knows.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Literal

from bestand.identity.normalize import normalize_email, normalize_phone, without_spaces

Platform = Literal["google", "uid2", "meta"]
FORMATS: tuple[Platform, ...] = ("google", "uid2", "meta")


def _sha256(value: str, platform: Platform) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.b64encode(digest).decode() if platform == "uid2" else digest.hex()


def email_form(raw: str, platform: Platform) -> str:
    """The e-mail as ``platform`` hashes it; raises ``InvalidIdentifier`` when it is not one."""
    normalized = normalize_email(raw, fold_alias=False)  # validates, also for Meta
    if platform == "meta":
        normalized = without_spaces(raw).lower()
    return _sha256(normalized, platform)


def phone_form(raw: str, platform: Platform, default_region: str) -> str:
    """The phone number as ``platform`` hashes it; raises ``InvalidIdentifier``."""
    e164 = normalize_phone(raw, default_region)
    return _sha256(e164.lstrip("+") if platform == "meta" else e164, platform)
