"""Names as evidence: spellings of one name agree, initials say nothing."""

from __future__ import annotations

import pytest

from bestand.identity.names import loose_name, name_key


@pytest.mark.parametrize(
    "spellings",
    [
        ("Müller", "Mueller", "MULLER", "müller "),
        ("Günther", "Guenther", "Gunther"),
        ("Käthe", "Kaethe", "Kathe"),
        ("Dr. Jörg", "Jorg", "Herr Joerg"),
        ("Søren", "Soren"),
    ],
)
def test_spellings_of_one_name_agree(spellings: tuple[str, ...]) -> None:
    assert len({loose_name(s) for s in spellings}) == 1


def test_different_names_differ() -> None:
    assert loose_name("Franziska") != loose_name("Olga")
    assert name_key("Emma", "Müller") != name_key("Emma", "Meier")


def test_too_little_gives_no_key() -> None:
    assert name_key("H.", "Müller") is None
    assert name_key(None, "Müller") is None
    assert name_key("Hans", "") is None
    assert name_key("null", "Müller") is None
    assert name_key("Hans", "Müller") == "muller|hans"
