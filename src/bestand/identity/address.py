"""Normalize postal addresses and names into fingerprints that survive spelling variants.

A loyal guest types ``Hauptstr. 5`` once and ``HAUPTSTRASSE 5`` the next time, ``Müller``
on the laptop and ``Mueller`` on the phone. Folding makes those one string, so the person's
address fingerprint links the two orders. Folding is deliberately lossy only where the
variants are spellings of the same thing (umlauts, accents, case, hyphens, abbreviations).
Non-Latin scripts are dropped, not transliterated: such a part folds to ``''`` and then gives
no fingerprint rather than a wrong one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from bestand.identity.junk import junk_value_reason

# German umlauts as German writers spell them without the key; casefold already made
# 'ß' and 'ẞ' into 'ss', the table covers them anyway for text that skipped casefold.
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss"})
# Letters that NFKD does not decompose into a base letter and a mark.
_LATIN = str.maketrans(
    {
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŀ": "l",
        "ŧ": "t",
        "ŋ": "n",
        "ĸ": "k",
    }
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=65536)
def _fold(value: str) -> str:
    """Casefolded ASCII letters and digits with separators kept: the tokenizable fold.

    Kept per value: an address that misses the fingerprint cache (a new combination of name,
    street, number and postcode) is mostly made of names, streets and postcodes seen before.
    """
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFKC", value).casefold())
    text = unicodedata.normalize("NFKD", text.translate(_GERMAN).translate(_LATIN))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def fold_text(value: str) -> str:
    """Fold to ``[a-z0-9]*``: case, umlauts (ä→ae), accents (é→e) and separators vanish."""
    return _NOT_ALNUM.sub("", _fold(value))


def _tokens(value: str) -> list[str]:
    """Folded words, split at separators and at letter/digit borders ('12a' → '12', 'a')."""
    return re.findall(r"[a-z]+|[0-9]+", _fold(value))


# ---------------------------------------------------------------------------------------------
# Street
# ---------------------------------------------------------------------------------------------

#: Whole words that are one street-type word spelled out or abbreviated. 'St.' is ambiguous
#: (German/French 'Sankt'/'Saint' before a name, English 'Street' after one); both readings
#: map to 'st', so 'St. Georg-Str.' == 'Sankt-Georg-Straße' and 'Main St.' == 'Main Street'
#: without deciding which one the typist meant.
_STREET_WORDS: dict[str, str] = {
    "sankt": "st",
    "saint": "st",
    "street": "st",
    "sainte": "ste",
    "place": "pl",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "parkway": "pkwy",
    "drive": "dr",
    "lane": "ln",
    "square": "sq",
}
#: German street types, shortened wherever they stand once spaces and hyphens are gone, so
#: 'Hauptstraße' == 'Haupt-Str.' == 'Haupt Strasse' and 'Marktplatz' == 'Markt-Platz'.
#: 'weg', 'allee', 'gasse', 'ring', 'damm' stay as they are: nobody abbreviates them
#: consistently, and 'g.' for 'gasse' would clash with initials ('Georg').
_STREET_PARTS: tuple[tuple[str, str], ...] = (("strasse", "str"), ("platz", "pl"))


def normalize_street(street: str) -> str:
    """Fold a street name; 'Karl-Marx-Str.' == 'Karl Marx Straße' == 'KARLMARXSTRASSE'."""
    joined = "".join(_STREET_WORDS.get(t, t) for t in _tokens(street))
    for long, short in _STREET_PARTS:
        joined = joined.replace(long, short)
    return joined


# A house number: 12, 12a, 12 a, 12-a, 12-14, 12a-c, 12/14, 12 1/2, 12½.
_NUMBER = r"""
    [0-9]+
    (?:\s*[-/]?\s*[a-z](?![a-z]))?                        # 12a, 12 a, 12-a
    (?:\s*[-/]\s*(?:[0-9]+(?:\s*[a-z](?![a-z]))?|[a-z](?![a-z])))?  # 12-14, 12a-c
    (?:\s+[0-9]+/[0-9]+|\s*[½¼¾])?                        # 12 1/2, 12½
"""
_NUMBER_WORD = r"(?:hausnummer|nummer|nr|no)\.?\s*"
_TRAILING_NUMBER = re.compile(
    rf"^(?P<street>.*?[^\W\d_]\.?)[\s,]*(?:{_NUMBER_WORD})?(?P<number>{_NUMBER})\s*$",
    re.IGNORECASE | re.VERBOSE,
)
_LEADING_NUMBER = re.compile(
    rf"^(?:{_NUMBER_WORD})?(?P<number>{_NUMBER})[\s,]+(?P<street>[^\W\d_].*)$",
    re.IGNORECASE | re.VERBOSE,
)


def split_street_and_number(street: str) -> tuple[str, str | None]:
    """Split 'Hauptstraße 12a' / '12 Main Street' into street and number, as typed.

    A trailing number wins (German order), so 'Straße des 17. Juni 135' keeps the 17 in the
    street. Text after the number ('12, 2. OG') is not guessed at: no number is found.
    """
    value = street.strip()
    for pattern in (_TRAILING_NUMBER, _LEADING_NUMBER):
        match = pattern.match(value)
        if match:
            return match["street"].strip(" ,"), match["number"].strip()
    return value, None


_FRACTIONS = str.maketrans({"½": " 1/2", "¼": " 1/4", "¾": " 3/4", "⁄": "/"})


def normalize_house_number(value: str) -> str:
    """'12 A' / '12a' / '12-a' → '12a'; '12 - 14' → '12-14'; '12½' → '12 1/2'; 'Nr. 5' → '5'."""
    text = _fold(value.translate(_FRACTIONS)).translate(_FRACTIONS).strip()
    text = re.sub(rf"^#?\s*{_NUMBER_WORD}|^#\s*", "", text)
    text = re.sub(r"[^a-z0-9/\-]+", " ", text)
    text = re.sub(r"\s*([-/])\s*", r"\1", text)
    text = re.sub(r"(?<=[0-9])[\s-]*(?=[a-z](?![a-z]))", "", text)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Country and postcode
# ---------------------------------------------------------------------------------------------

#: Folded country names and ISO alpha-3 codes that shops put where an alpha-2 code belongs.
_COUNTRY_ALIASES: dict[str, str] = {
    **dict.fromkeys(("d", "deu", "deutschland", "germany", "allemagne", "bundesrepublik"), "de"),
    **dict.fromkeys(("a", "aut", "oesterreich", "osterreich", "austria", "autriche"), "at"),
    **dict.fromkeys(("che", "schweiz", "switzerland", "suisse", "svizzera", "svizra"), "ch"),
    **dict.fromkeys(("fl", "lie", "liechtenstein"), "li"),
    **dict.fromkeys(("nld", "nederland", "netherlands", "niederlande", "holland"), "nl"),
    **dict.fromkeys(("bel", "belgien", "belgium", "belgique", "belgie"), "be"),
    **dict.fromkeys(("lux", "luxemburg", "luxembourg"), "lu"),
    **dict.fromkeys(("fra", "frankreich", "france"), "fr"),
    **dict.fromkeys(("ita", "italien", "italy", "italia"), "it"),
    **dict.fromkeys(("esp", "spanien", "spain", "espana"), "es"),
    **dict.fromkeys(("pol", "polen", "poland", "polska"), "pl"),
    **dict.fromkeys(("dnk", "daenemark", "danemark", "denmark", "danmark"), "dk"),
    **dict.fromkeys(("cze", "tschechien", "czechia", "czechrepublic"), "cz"),
    **dict.fromkeys(("uk", "gbr", "unitedkingdom", "greatbritain", "grossbritannien"), "gb"),
    **dict.fromkeys(("england", "scotland", "wales", "northernireland"), "gb"),
    **dict.fromkeys(("usa", "unitedstates", "unitedstatesofamerica", "vereinigtestaaten"), "us"),
}


def normalize_country(value: str | None, default: str = "DE") -> str:
    """Lowercase ISO 3166 alpha-2 code ('DE', 'Deutschland', 'DEU' → 'de'); default if missing."""
    folded = fold_text(value) if value is not None else ""
    if not folded:
        folded = fold_text(default)
    return _COUNTRY_ALIASES.get(folded, folded)


_DIGIT_POSTCODES = frozenset({"de", "at", "ch", "li"})


@lru_cache(maxsize=65536)
def normalize_postcode(value: str, country: str | None) -> str:
    """Postcode without spaces, uppercase: 'sw1a 1aa' → 'SW1A1AA', 'D-01067' → '01067'.

    DE/AT/CH/LI codes are digits only, so an old 'D-' / 'CH-' prefix goes. A German code of
    four digits lost its leading zero in a spreadsheet ('1067' → '01067'). US ZIP+4 keeps the
    five-digit ZIP, which people give either way.
    """
    text = fold_text(value).upper()
    code = normalize_country(country, default="") if country is not None else ""
    if code in _DIGIT_POSTCODES:
        digits = re.sub(r"[^0-9]", "", text)
        return digits.zfill(5) if code == "de" and len(digits) == 4 else digits
    if code == "us":
        digits = re.sub(r"[^0-9]", "", text)
        return digits[:5] if len(digits) == 9 else digits
    return text


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

#: Salutations and titles, dropped wherever they stand ('Dr. Hans Müller', 'Familie Müller').
#: Generational suffixes ('jr', 'sr', 'jun', 'sen') are kept: they tell father and son apart.
_TITLES = frozenset(
    {
        *("herr", "herrn", "hr", "frau", "fr", "familie", "fam"),
        *("mr", "mrs", "ms", "miss", "mx", "sir", "dame"),
        *("monsieur", "madame", "mme", "mlle", "mademoiselle", "signor", "signora"),
        *("dr", "doktor", "prof", "professor", "dipl", "mag"),
    }
)
#: Degree qualifiers, dropped only right after a title ('Dr. med.', 'Dipl.-Ing.', 'Dr. h.c.');
#: alone they may be names ('Ing', 'Nat').
_DEGREES = frozenset(
    {"med", "dent", "vet", "rer", "nat", "pol", "oec", "phil", "jur", "theol", "ing", "hc"}
    | {"mult", "habil", "techn"}
)
_HONORIS_CAUSA = re.compile(r"\bh\.\s*c\.")


@lru_cache(maxsize=65536)
def _name_tokens(value: str) -> tuple[str, ...]:
    """Folded name words without salutations, titles and degrees (kept per value)."""
    kept: list[str] = []
    after_title = False
    for token in re.findall(r"[a-z0-9]+", _HONORIS_CAUSA.sub(" hc ", _fold(value))):
        if token in _TITLES or (after_title and token in _DEGREES):
            after_title = True
            continue
        after_title = False
        kept.append(token)
    return tuple(kept)


def normalize_person_name(value: str) -> str:
    """Fold a name without titles: 'Dr. Hans-Jörg Müller' → 'hansjoergmueller'.

    'Müller' and 'Mueller' fold alike; 'MULLER' / 'Muller' (umlaut dropped, not spelled out)
    fold to 'muller', a different name: we cannot tell it from a real 'Muller' and prefer a
    missed link to a false one.
    """
    return "".join(_name_tokens(value))


# ---------------------------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressFingerprints:
    """Normalized address keys, hashed later; None when a needed part is missing."""

    full_name: str | None  # address + first and last name: links persons (by policy)
    household: str | None  # address + last name only: never links, only describes


def _given(value: str | None) -> str | None:
    """The value, or None when it is missing or a junk placeholder ('-', 'n/a', 'xxx')."""
    if value is None or junk_value_reason(value) is not None:
        return None
    return value


@lru_cache(maxsize=65536)
def _street_and_number(street: str | None, house_number: str | None) -> tuple[str, str]:
    """Normalized street and number; the number may sit in the street field, or in both.

    Kept per pair: an address that misses the fingerprint cache is mostly a street and
    number seen before with another name or another spelling of the name.
    """
    street, number = _given(street), _given(house_number)
    if street is None:
        return "", normalize_house_number(number) if number is not None else ""
    name, found = split_street_and_number(street)
    if number is None:
        number = found
        street = name
    elif found is not None and normalize_house_number(found) == normalize_house_number(number):
        street = name  # 'Hauptstraße 5' and house number '5': the number was typed twice
    if number is None or _given(number) is None:
        return normalize_street(street), ""
    return normalize_street(street), normalize_house_number(number)


def address_fingerprints(
    *,
    first_name: str | None,
    last_name: str | None,
    street: str | None,
    house_number: str | None,
    postcode: str | None,
    city: str | None,
    country: str | None,
    default_country: str = "DE",
) -> AddressFingerprints:
    """Fingerprints 'de|10115|invalidenstr|117|mueller|hans' (full name) and without the name.

    The city is not part of the key: 'München' / 'Muenchen' / 'Munich' vary, the postcode
    already names the place. A first name given as initials only ('H.') gives no full-name
    fingerprint: it would link 'Hans' and 'Heike' Müller at one address.
    """
    del city  # accepted so callers can pass a whole address; see the docstring
    code = normalize_country(_given(country), default_country)
    given_postcode = _given(postcode)
    post = normalize_postcode(given_postcode, code).lower() if given_postcode else ""
    street_key, number_key = _street_and_number(street, house_number)
    given_last = _given(last_name)
    last = normalize_person_name(given_last) if given_last else ""
    if not (code and post and street_key and number_key and last):
        return AddressFingerprints(full_name=None, household=None)
    household = f"{code}|{post}|{street_key}|{number_key}|{last}"
    given_first = _given(first_name)
    first_tokens = _name_tokens(given_first) if given_first else ()
    if not first_tokens or all(len(t) == 1 for t in first_tokens):
        return AddressFingerprints(full_name=None, household=household)
    return AddressFingerprints(
        full_name=f"{household}|{''.join(first_tokens)}", household=household
    )
