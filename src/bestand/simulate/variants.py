"""How one person writes the same thing differently, and how they get it wrong.

A *variant* names the same thing (normalization should make it equal); a *typo* names
something else (only other identifiers can link it). Functions take the random generator so
every choice follows the simulation's seed.
"""

from __future__ import annotations

import random

from bestand.simulate.names import DOMAIN_TYPOS

GMAIL = frozenset({"gmail.com", "googlemail.com"})
_ASCII = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ı": "i",
     "ş": "s", "ś": "s", "Ş": "S"}
)  # fmt: skip


def ascii_fold(text: str) -> str:
    """German transliteration (ü → ue, ß → ss): how names end up in e-mail addresses."""
    return text.translate(_ASCII)


def email_variant(rng: random.Random, email: str) -> str:
    """The same mailbox typed another way: case, whitespace, and for Gmail dots and +tags."""
    local, domain = email.split("@")
    choices = ["upper", "capital", "spaces", "domain_upper"]
    if domain in GMAIL:
        choices += ["no_dots", "plus_tag", "plus_tag", "dots_and_tag"]
    match rng.choice(choices):
        case "upper":
            return email.upper()
        case "capital":
            return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain
        case "spaces":
            return rng.choice((" ", "  ", "")) + email + rng.choice((" ", "\t", "  "))
        case "domain_upper":
            return f"{local}@{domain.upper()}"
        case "no_dots":
            return f"{local.replace('.', '')}@{domain}"
        case "plus_tag":
            return f"{local}+{rng.choice(('shop', 'angebot', 'news', 'bestellung'))}@{domain}"
        case _:
            tag = rng.randint(1, 99)
            return f" {local.replace('.', '').upper()}+{tag}@{domain.capitalize()} "


def email_typo(rng: random.Random, email: str) -> str:
    """A misspelt address (another mailbox): a letter missing or swapped, or a domain typo."""
    local, domain = email.split("@")
    letters = [i for i, char in enumerate(local) if char.isalpha()]
    roll = rng.random()
    if domain in DOMAIN_TYPOS and roll < 0.4:
        return f"{local}@{rng.choice(DOMAIN_TYPOS[domain])}"
    if roll < 0.7 and len(letters) > 2:
        drop = rng.choice(letters[1:])
        return f"{local[:drop]}{local[drop + 1 :]}@{domain}"
    pairs = [i for i in range(len(local) - 1) if local[i] != local[i + 1]]
    if not pairs:
        return f"{local}{local[-1]}@{domain}"
    i = rng.choice(pairs)
    return f"{local[:i]}{local[i + 1]}{local[i]}{local[i + 2 :]}@{domain}"


def phone_variant(rng: random.Random, e164: str) -> str:
    """The same number written another way: +49 151 …, 0151 …, 0049…, (0151) …, 0151/…."""
    if e164.startswith("+49"):
        national = e164[3:]
        split = 3 if national[0] == "1" else _area_length(national)
        area, rest = national[:split], national[split:]
        return rng.choice(
            (
                e164,
                f"0{area} {rest}",
                f"0{area} {rest[:4]} {rest[4:]}",
                f"+49 {area} {rest}",
                f"0049{national}",
                f"0049 {area} {rest}",
                f"(0{area}) {rest}",
                f"0{area}/{rest}",
                f"0{area}-{rest}",
                f"+49 (0){area} {rest}",
            )
        )
    country, rest = e164[:3], e164[3:]
    # Foreigners mostly write the international form; sometimes the national form, which a
    # German shop's default region reads as a German number (a realistic missed link).
    return rng.choice(
        (
            e164,
            f"{country} {rest[:1]} {rest[1:]}",
            f"00{country[1:]} {rest}",
            f"{country} {rest[:4]} {rest[4:]}",
            e164,
            f"0{rest}",
        )
    )


def _area_length(national: str) -> int:
    """Length of a German area code (30, 40, 69, 89 are two digits; most others three)."""
    return 2 if national[:2] in {"30", "40", "69", "89"} else 3


def name_variant(rng: random.Random, name: str) -> str:
    """A name as another system stores it: transliterated, upper case, umlaut dropped."""
    folded = ascii_fold(name)
    dropped = name.translate(str.maketrans("äöüÄÖÜ", "aouAOU"))
    return rng.choice((folded, folded, name.upper(), dropped))


_STREET_SUFFIXES = (("straße", ("str.", "strasse", "Str.")), ("Straße", ("Str.", "Strasse")))


def street_variant(rng: random.Random, street: str) -> str:
    """Hauptstraße / Hauptstr. / Hauptstrasse; Münchner Straße / Münchner Str."""
    for suffix, shorter in _STREET_SUFFIXES:
        if street.endswith(suffix):
            return street[: -len(suffix)] + rng.choice(shorter)
    if street.endswith("Road"):
        return street[:-4] + "Rd"
    if street.endswith("straat"):
        return street[:-6] + "str."
    return ascii_fold(street) if ascii_fold(street) != street else street.lower()


def house_number_variant(rng: random.Random, number: str) -> str:
    """12a / 12 A / 12A; plain numbers stay as they are."""
    if number[-1].isalpha():
        digits, letter = number[:-1], number[-1]
        return rng.choice((f"{digits} {letter.upper()}", f"{digits}{letter.upper()}"))
    return number


def postcode_variant(postcode: str) -> str:
    """1012 AB ↔ 1012AB, SW1A 1AA ↔ SW1A1AA; German postcodes have one spelling."""
    if " " in postcode:
        return postcode.replace(" ", "")
    return postcode


def city_variant(city: str) -> str:
    """München / Muenchen, Frankfurt am Main / Frankfurt."""
    if city == "Frankfurt am Main":
        return "Frankfurt"
    if city == "Freiburg im Breisgau":
        return "Freiburg"
    return ascii_fold(city)


def loyalty_card_variant(rng: random.Random, card: str) -> str:
    """A card number as typed at the till or printed on the card: spaces, dashes, none."""
    groups = [card[i : i + 4] for i in range(0, len(card), 4)]
    return rng.choice((card, " ".join(groups), "-".join(groups), " ".join(groups) + " "))
