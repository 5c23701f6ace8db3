"""The lookup HTTP API (never imports the stream package: reads work while no worker runs)."""

from __future__ import annotations

from bestand.api.app import LookupApi, create_api

__all__ = ["LookupApi", "create_api"]
