"""The README documents what the code reads: every setting and every CLI command."""

from __future__ import annotations

from pathlib import Path

from bestand.cli import build_parser
from bestand.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        f"BESTAND_{name.upper()}"
        for name in Settings.model_fields
        if f"`BESTAND_{name.upper()}`" not in README
    ]
    assert missing == []


def test_every_command_is_in_the_command_table() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    missing = [name for name in commands if f"`bestand {name}" not in README]
    assert missing == []


def test_the_readme_opens_with_the_two_commands() -> None:
    opening = "\n".join(README.splitlines()[:10])
    assert "make demo" in opening
    assert "make test" in opening
