"""The audience export: contact list in, a platform's upload file out."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO

from bestand.api.service import LookupService
from bestand.audience.contacts import Contact
from bestand.audience.forms import Platform, email_form, phone_form
from bestand.audience.segments import consent_allows, in_segment
from bestand.identity import InvalidIdentifier

#: Column names each platform's upload template uses.
_HEADERS: dict[Platform, tuple[str, str]] = {
    "google": ("Email", "Phone"),
    "meta": ("email", "phone"),
    "uid2": ("email_hash", "phone_hash"),
}
_BATCH = 500


@dataclass
class ExportSummary:
    """What an export read and wrote."""

    contacts: int = 0
    invalid: int = 0
    unknown: int = 0
    outside_segment: int = 0
    without_consent: int = 0
    rows: int = 0
    persons: set[str] = field(default_factory=set)

    def lines(self) -> list[str]:
        """The summary for the terminal."""
        return [
            f"contacts read:        {self.contacts}",
            f"  unknown to bestand: {self.unknown}",
            f"  outside the segment: {self.outside_segment}",
            f"  no ads consent:     {self.without_consent}",
            f"  invalid e-mail/phone: {self.invalid}",
            f"rows written:         {self.rows} ({len(self.persons)} persons)",
        ]


def _hashed(
    form: Callable[[str, Platform], str], raw: str | None, platform: Platform
) -> str | None:
    """The platform form of one identifier; ``None`` when absent or not valid."""
    if not raw:
        return None
    try:
        return form(raw, platform)
    except InvalidIdentifier:
        return None


def _chunks(items: Iterable[Contact], size: int) -> Iterator[list[Contact]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def export_audience(
    service: LookupService,
    contacts: Iterable[Contact],
    out: IO[str],
    *,
    segment: str,
    platform: Platform,
    default_region: str,
    unstated_consent: bool = False,
    progress: Callable[[ExportSummary], None] = lambda _: None,
) -> ExportSummary:
    """Write the hashed identifiers of every contact in ``segment`` whose consent allows it."""
    summary = ExportSummary()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_HEADERS[platform])
    written: set[tuple[str | None, str | None]] = set()
    for chunk in _chunks(contacts, _BATCH):
        items: list[tuple[str, str]] = []
        for contact in chunk:
            items += [("email", contact.email or ""), ("phone", contact.phone or "")]
        answers = await service.lookup_many(items, "admin")
        for position, contact in enumerate(chunk):
            summary.contacts += 1
            by_email, by_phone = answers[2 * position], answers[2 * position + 1]
            found = [
                a["answer"]
                for a, given in ((by_email, contact.email), (by_phone, contact.phone))
                if given and a["answer"] is not None and a["answer"]["known"]
            ]
            if not found:
                summary.unknown += 1
                continue
            answer = found[0]
            if not in_segment(answer, segment):
                summary.outside_segment += 1
                continue
            if not consent_allows(answer, unstated=unstated_consent):
                summary.without_consent += 1
                continue
            row = (
                _hashed(email_form, contact.email, platform),
                _hashed(lambda raw, p: phone_form(raw, p, default_region), contact.phone, platform),
            )
            if row == (None, None):
                summary.invalid += 1
                continue
            if row not in written:
                written.add(row)
                writer.writerow(["" if value is None else value for value in row])
                summary.rows += 1
            summary.persons.add(str(answer["person_id"]))
        progress(summary)
    return summary
