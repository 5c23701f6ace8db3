"""bestand: is this an existing customer, yes or no? Live person state from event streams."""

from __future__ import annotations

from bestand.settings import Settings

__all__ = ["Settings"]
