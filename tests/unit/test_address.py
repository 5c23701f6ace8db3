"""Address and name fingerprints: one person's spellings fold alike, other persons do not."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bestand.identity.address import (
    AddressFingerprints,
    address_fingerprints,
    fold_text,
    normalize_country,
    normalize_house_number,
    normalize_person_name,
    normalize_postcode,
    normalize_street,
    split_street_and_number,
)

# --- fold_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Müller", "mueller"),
        ("MÜLLER", "mueller"),
        ("Mu\u0308ller", "mueller"),  # decomposed umlaut
        ("Größe", "groesse"),
        ("GROẞE", "grosse"),
        ("Öztürk", "oeztuerk"),
        ("Ärger", "aerger"),
        ("José", "jose"),
        ("Łódź", "lodz"),
        ("Søren", "soren"),
        ("Æsop", "aesop"),
        ("Œuvre", "oeuvre"),
        ("Jean-Luc O'Neil", "jeanluconeil"),
        ("Ｆｕｌｌ１", "full1"),  # fullwidth letters and digits
        ("Straße des 17. Juni", "strassedes17juni"),
        ("Москва", ""),  # non-Latin scripts are dropped, not guessed at
    ],
)
def test_fold_text(raw: str, folded: str) -> None:
    assert fold_text(raw) == folded


@given(st.text())
def test_fold_is_idempotent_and_ascii(value: str) -> None:
    folded = fold_text(value)
    assert fold_text(folded) == folded
    assert re.fullmatch(r"[a-z0-9]*", folded)


# --- streets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        ("Hauptstr.", "Hauptstraße", "HAUPTSTRASSE", "Hauptstrasse", "Haupt-Straße", "hauptstr"),
        ("Karl-Marx-Allee", "Karl Marx Allee", "KARL-MARX-ALLEE"),
        ("Karl-Marx-Str.", "Karl Marx Strasse", "karlmarxstr"),
        ("Marktplatz", "Marktpl.", "Markt-Platz"),
        ("St. Georg-Str.", "Sankt-Georg-Straße", "St.-Georg-Strasse", "Sankt Georg Str"),
        ("Straße des 17. Juni", "Str. des 17. Juni", "STRASSE DES 17. JUNI"),
        ("Main Street", "Main St.", "main st"),
        ("Fifth Avenue", "Fifth Ave", "Fifth Ave."),
        ("Amphitheatre Parkway", "Amphitheatre Pkwy"),
        ("Rue Saint-Honoré", "Rue St-Honore", "rue st. honoré"),
        ("Mariahilfer Straße", "Mariahilferstrasse"),  # Vienna
        ("Bahnhofstrasse", "Bahnhofstr."),  # Zürich, Swiss spelling without ß
    ],
)
def test_street_spellings_fold_alike(variants: tuple[str, ...]) -> None:
    assert len({normalize_street(v) for v in variants}) == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Hauptstraße", "Hauptweg"),
        ("Lindenallee", "Lindenstraße"),
        ("Marktplatz", "Marktstraße"),
        ("Straße des 17. Juni", "Straße des 18. Juni"),
    ],
)
def test_different_streets_stay_different(one: str, other: str) -> None:
    assert normalize_street(one) != normalize_street(other)


STREET_ALPHABET = "abcdefghijklmnopqrstuvwxyzäöüßéABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜ -."


@given(st.text(alphabet=STREET_ALPHABET, max_size=30), st.sampled_from(["", " ", "-"]))
def test_street_type_spellings_do_not_matter(name: str, joint: str) -> None:
    endings = ("straße", "strasse", "str.", "Str", "STRASSE", "Straße ", "STR.")
    assert len({normalize_street(f"{name}{joint}{ending}") for ending in endings}) == 1


@given(st.text(), st.sampled_from(["", " ", "  ", "\t", "\n "]))
def test_street_ignores_case_and_surrounding_whitespace(name: str, pad: str) -> None:
    expected = normalize_street(name)
    assert normalize_street(name.upper()) == expected
    assert normalize_street(name.lower()) == expected
    assert normalize_street(f"{pad}{name}{pad}") == expected


# --- splitting street and number ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "street", "number"),
    [
        ("Hauptstraße 12a", "Hauptstraße", "12a"),
        ("Hauptstr. 5", "Hauptstr.", "5"),
        ("Hauptstr.5", "Hauptstr.", "5"),
        ("Hauptstraße Nr. 5", "Hauptstraße", "5"),
        ("Karl-Marx-Allee 12 a", "Karl-Marx-Allee", "12 a"),
        ("Straße des 17. Juni 135", "Straße des 17. Juni", "135"),
        ("Straße des 17. Juni", "Straße des 17. Juni", None),
        ("Hauptstraße 12-14", "Hauptstraße", "12-14"),
        ("Hauptstraße, 7", "Hauptstraße", "7"),
        ("Am Hang 3 1/2", "Am Hang", "3 1/2"),
        ("Rue de Rivoli 5", "Rue de Rivoli", "5"),
        ("5, Rue de Rivoli", "Rue de Rivoli", "5"),
        ("12 Main Street", "Main Street", "12"),
        ("221B Baker Street", "Baker Street", "221B"),
        ("1600 Amphitheatre Pkwy", "Amphitheatre Pkwy", "1600"),
        ("Hauptstraße", "Hauptstraße", None),
        ("  Hauptstraße 1 ", "Hauptstraße", "1"),
    ],
)
def test_split_street_and_number(raw: str, street: str, number: str | None) -> None:
    assert split_street_and_number(raw) == (street, number)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("12a", "12a"),
        ("12 A", "12a"),
        ("12-a", "12a"),
        ("12 - A", "12a"),
        ("12-14", "12-14"),
        ("12 - 14", "12-14"),
        ("12/14", "12/14"),
        ("12a-c", "12a-c"),
        ("12 1/2", "12 1/2"),
        ("12½", "12 1/2"),
        ("Nr. 5", "5"),
        ("nr5", "5"),
        ("No. 5", "5"),
        ("#5", "5"),
        ("5.", "5"),
        ("221B", "221b"),
    ],
)
def test_normalize_house_number(raw: str, normalized: str) -> None:
    assert normalize_house_number(raw) == normalized


# --- postcodes and countries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "normalized"),
    [
        ("10115", "DE", "10115"),
        (" 101 15 ", "DE", "10115"),
        ("D-10115", "DE", "10115"),
        ("01067", "DE", "01067"),
        ("1067", "DE", "01067"),  # leading zero lost in a spreadsheet
        ("1010", "AT", "1010"),  # Vienna
        ("A-1010", "AT", "1010"),
        ("8001", "CH", "8001"),  # Zürich
        ("CH-8001", "CH", "8001"),
        ("1234 ab", "NL", "1234AB"),
        ("sw1a 1aa", "GB", "SW1A1AA"),
        ("SW1A 1AA", "UK", "SW1A1AA"),
        ("94043-1351", "US", "94043"),
        ("94043", "US", "94043"),
        ("75001", "FR", "75001"),
        ("sw1a 1aa", None, "SW1A1AA"),
    ],
)
def test_normalize_postcode(raw: str, country: str | None, normalized: str) -> None:
    assert normalize_postcode(raw, country) == normalized


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("DE", "de"),
        ("de", "de"),
        ("Deutschland", "de"),
        ("DEU", "de"),
        ("Österreich", "at"),
        ("Schweiz", "ch"),
        ("UK", "gb"),
        ("FR", "fr"),
        (None, "de"),
        ("", "de"),
    ],
)
def test_normalize_country(raw: str | None, code: str) -> None:
    assert normalize_country(raw) == code


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        ("Müller", "Mueller", "MÜLLER", "MUELLER", " müller "),
        ("Hans-Jörg", "Hans Jörg", "HANS-JOERG", "hansjoerg"),
        ("Dr. Hans Müller", "Hans Müller", "Herr Hans Müller", "Prof. Dr. Hans Mueller"),
        ("Frau Anna Schmidt", "Anna Schmidt", "Mrs Anna Schmidt", "Ms. Anna Schmidt"),
        ("Dr. med. Anna Weiß", "Anna Weiss", "Dipl.-Ing. Anna Weiß", "Dr. h.c. Anna Weiss"),
        ("José García", "Jose Garcia"),
    ],
)
def test_name_spellings_fold_alike(variants: tuple[str, ...]) -> None:
    assert len({normalize_person_name(v) for v in variants}) == 1


def test_muller_without_e_is_another_name() -> None:
    # The umlaut dropped without its 'e' cannot be told from a real 'Muller': no link.
    assert normalize_person_name("Muller") != normalize_person_name("Müller")


def test_generational_suffixes_are_kept() -> None:
    assert normalize_person_name("John Smith Jr.") != normalize_person_name("John Smith Sr.")


def test_a_degree_word_alone_is_a_name() -> None:
    assert normalize_person_name("Kai Ing") == "kaiing"


# --- fingerprints ------------------------------------------------------------------------------

HANS: dict[str, str | None] = {
    "first_name": "Hans",
    "last_name": "Müller",
    "street": "Invalidenstraße",
    "house_number": "117",
    "postcode": "10115",
    "city": "Berlin",
    "country": "DE",
}


def _prints(parts: dict[str, str | None]) -> AddressFingerprints:
    return address_fingerprints(
        first_name=parts["first_name"],
        last_name=parts["last_name"],
        street=parts["street"],
        house_number=parts["house_number"],
        postcode=parts["postcode"],
        city=parts["city"],
        country=parts["country"],
    )


def test_fingerprint_format() -> None:
    assert _prints(HANS) == AddressFingerprints(
        full_name="de|10115|invalidenstr|117|mueller|hans",
        household="de|10115|invalidenstr|117|mueller",
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"country": None},  # the default country
        {"country": "Deutschland"},
        {"city": "BERLIN-Mitte"},  # the city is not part of the key
        {"city": None},
        {"street": "Invalidenstr. 117", "house_number": None},  # number in the street field
        {"street": "INVALIDENSTRASSE 117", "house_number": "117"},  # typed twice
        {"last_name": "MUELLER", "first_name": " hans "},
        {"postcode": "101 15"},
    ],
)
def test_fingerprint_survives_spelling_variants(changes: dict[str, str | None]) -> None:
    assert _prints(HANS | changes) == _prints(HANS)


def test_city_spellings_do_not_matter() -> None:
    munich: dict[str, str | None] = {
        **HANS,
        "postcode": "80331",
        "street": "Marienplatz",
        "house_number": "8",
    }
    keys = {_prints(munich | {"city": city}) for city in ("München", "Muenchen", "Munich", None)}
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("changes", "household"),
    [
        ({"street": None}, False),
        ({"street": "  "}, False),
        ({"house_number": None}, False),
        ({"house_number": "-"}, False),
        ({"postcode": None}, False),
        ({"postcode": "00000"}, False),
        ({"last_name": None}, False),
        ({"last_name": "n/a"}, False),
        ({"last_name": "Москва"}, False),  # folds to nothing
        ({"first_name": None}, True),
        ({"first_name": ""}, True),
        ({"first_name": "H."}, True),  # an initial would link Hans and Heike
        ({"first_name": "H.-P."}, True),
        ({"first_name": "Herr"}, True),  # a salutation in the first-name field
    ],
)
def test_missing_parts_give_no_fingerprint(changes: dict[str, str | None], household: bool) -> None:
    keys = _prints(HANS | changes)
    assert keys.full_name is None
    assert (keys.household is not None) is household


def test_two_persons_of_one_household() -> None:
    hans = _prints(HANS)
    heike = _prints(HANS | {"first_name": "Heike"})
    assert hans.household == heike.household
    assert hans.full_name != heike.full_name


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            {"street": "Hauptstr. 5", "house_number": None},
            {"street": "Hauptstraße", "house_number": "5"},
        ),
        (
            {"street": "Karl-Marx-Allee", "house_number": "12 a"},
            {"street": "Karl Marx Allee 12A", "house_number": None},
        ),
        (
            {"street": "Straße des 17. Juni 135", "house_number": None},
            {"street": "Str. des 17. Juni", "house_number": "135"},
        ),
    ],
)
def test_german_street_examples(one: dict[str, str | None], other: dict[str, str | None]) -> None:
    assert _prints(HANS | one) == _prints(HANS | other)
    assert _prints(HANS | one).full_name is not None


def test_austrian_and_swiss_addresses() -> None:
    vienna = address_fingerprints(
        first_name="Anna",
        last_name="Gruber",
        street="Mariahilfer Straße 1",
        house_number=None,
        postcode="A-1060",
        city="Wien",
        country="AT",
    )
    assert vienna.full_name == "at|1060|mariahilferstr|1|gruber|anna"
    zurich = address_fingerprints(
        first_name="Urs",
        last_name="Kälin",
        street="Bahnhofstrasse",
        house_number="1",
        postcode="8001",
        city="Zürich",
        country="CH",
    )
    assert zurich.full_name == "ch|8001|bahnhofstr|1|kaelin|urs"


@pytest.mark.parametrize(
    ("street", "postcode", "country", "expected"),
    [
        ("Rue de Rivoli 5", "75001", "FR", "fr|75001|ruederivoli|5|doe|jane"),
        ("221B Baker Street", "NW1 6XE", "GB", "gb|nw16xe|bakerst|221b|doe|jane"),
        ("1600 Amphitheatre Pkwy", "94043", "US", "us|94043|amphitheatrepkwy|1600|doe|jane"),
    ],
)
def test_international_addresses(street: str, postcode: str, country: str, expected: str) -> None:
    keys = address_fingerprints(
        first_name="Jane",
        last_name="Doe",
        street=street,
        house_number=None,
        postcode=postcode,
        city=None,
        country=country,
    )
    assert keys.full_name == expected


# --- fingerprint invariance (property) ---------------------------------------------------------

_SPELLED_OUT = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
)


def _variant(value: str, how: str) -> str:
    """One spelling of ``value`` that a person might type on another day."""
    if how == "upper":
        return value.upper()
    if how == "lower":
        return value.lower()
    if how == "spelled":
        return value.translate(_SPELLED_OUT)
    if how == "padded":
        return f"  {value.replace(' ', '  ')}\t"
    return value


VARIANT = st.sampled_from(["same", "upper", "lower", "spelled", "padded"])
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüß", min_size=2, max_size=12).map(str.title)
STREET = st.tuples(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüß", min_size=2, max_size=12).map(str.title),
    st.sampled_from(["straße", "strasse", "str.", " Straße", "weg", "allee", "platz", "-Allee"]),
).map("".join)
NUMBER = st.tuples(st.integers(1, 999), st.sampled_from(["", "a", " b", "-c"])).map(
    lambda t: f"{t[0]}{t[1]}"
)
POSTCODE = st.from_regex(r"[0-9]{5}", fullmatch=True)


@given(
    first=NAME,
    last=NAME,
    street=STREET,
    number=NUMBER,
    postcode=POSTCODE,
    country=st.sampled_from(["DE", "de", None, " De "]),
    hows=st.lists(VARIANT, min_size=5, max_size=5),
    number_in_street=st.booleans(),
)
def test_fingerprints_ignore_case_whitespace_and_umlaut_spelling(
    first: str,
    last: str,
    street: str,
    number: str,
    postcode: str,
    country: str | None,
    hows: list[str],
    number_in_street: bool,
) -> None:
    base = address_fingerprints(
        first_name=first,
        last_name=last,
        street=street,
        house_number=number,
        postcode=postcode,
        city="Berlin",
        country="DE",
    )
    assume(base.full_name is not None)
    variant_street = _variant(street, hows[2])
    variant_number: str | None = _variant(number, hows[3])
    if number_in_street:
        variant_street, variant_number = f"{variant_street} {variant_number}", None
    variant = address_fingerprints(
        first_name=_variant(first, hows[0]),
        last_name=_variant(last, hows[1]),
        street=variant_street,
        house_number=variant_number,
        postcode=_variant(postcode, hows[4]),
        city=None,
        country=country,
    )
    assert variant == base
