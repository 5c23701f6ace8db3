"""Audiences for ad platforms: suppression lists of existing customers and other segments.

bestand keeps no raw e-mail or phone number, and the hashes that ad platforms take are
unkeyed SHA-256, so they are not kept either: an export reads the shop's own contact list,
looks every contact up, keeps those in the segment whose consent allows it, and writes the
platform's hashed form of their identifiers.
"""

from __future__ import annotations

from bestand.audience.forms import FORMATS, email_form, phone_form
from bestand.audience.segments import SEGMENTS, in_segment

__all__ = ["FORMATS", "SEGMENTS", "email_form", "in_segment", "phone_form"]
