"""Profile: a person's state, the pure reducer over it, lifecycle and the lookup summary."""

from __future__ import annotations

from bestand.profile.lifecycle import LifecycleRules, LifecycleStage, lifecycle_stage
from bestand.profile.reducer import apply, merge
from bestand.profile.state import OrderRecord, PersonState, dump_state, load_state
from bestand.profile.summary import LookupSummary, unknown_answer

__all__ = [
    "LifecycleRules",
    "LifecycleStage",
    "LookupSummary",
    "OrderRecord",
    "PersonState",
    "apply",
    "dump_state",
    "lifecycle_stage",
    "load_state",
    "merge",
    "unknown_answer",
]
