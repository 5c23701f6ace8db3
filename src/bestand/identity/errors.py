"""Errors of identity normalization."""

from __future__ import annotations


class InvalidIdentifier(ValueError):
    """A value that cannot name a person, e.g. an e-mail without '@' or an impossible phone."""
