"""Redis adapter: the key schema, atomic scripts, identity graph, person state, lookups."""

from __future__ import annotations

from bestand.store.connection import connect
from bestand.store.errors import ClusterNotSupported, StoreConflict, StoreLayoutError
from bestand.store.identity_graph import IdentityGraph
from bestand.store.keys import Keys
from bestand.store.lookups import LookupReader
from bestand.store.profiles import ApplyOutcome, ProfileStore
from bestand.store.scripts import Scripts

__all__ = [
    "ApplyOutcome",
    "ClusterNotSupported",
    "IdentityGraph",
    "Keys",
    "LookupReader",
    "ProfileStore",
    "Scripts",
    "StoreConflict",
    "StoreLayoutError",
    "connect",
]
