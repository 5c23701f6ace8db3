"""Errors of the Redis store."""

from __future__ import annotations


class StoreConflict(RuntimeError):
    """A compare-and-set kept losing against concurrent writers; the event will be retried."""
