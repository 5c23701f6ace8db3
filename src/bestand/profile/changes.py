"""Which profile changes one applied event causes: a pure comparison of two summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bestand.events import ResolvedEvent
from bestand.events.changes import ChangeKind
from bestand.profile.lifecycle import LifecycleRules, lifecycle_stage
from bestand.profile.summary import LookupSummary


@dataclass(slots=True)  # built per event: frozen would double that
class Change:
    """One change of a person's answer."""

    change: ChangeKind
    existing_customer: bool | None = None
    orders_count: int | None = None
    stage_before: str | None = None
    stage_after: str | None = None
    absorbed: tuple[str, ...] = ()


def _stage(summary: LookupSummary | None, now: int, rules: LifecycleRules) -> str:
    if summary is None:
        return "prospect"
    return lifecycle_stage(
        summary.orders_count, summary.last_order_at, now, rules, summary.previous_order_at
    )


def profile_changes(
    before: LookupSummary | None,
    after: LookupSummary,
    now: int,
    rules: LifecycleRules,
    absorbed: Sequence[str] = (),
) -> list[Change]:
    """Changes between the answer before and after an event, in a stable order."""
    if (
        not absorbed
        and before is not None
        and before.orders_count == after.orders_count
        and before.last_order_at == after.last_order_at
        and before.previous_order_at == after.previous_order_at
    ):
        return []  # the customer flag and the stage rest on nothing that moved (a click)
    was = before is not None and before.existing_customer
    is_ = after.existing_customer
    stage_before, stage_after = _stage(before, now, rules), _stage(after, now, rules)
    kinds: list[ChangeKind] = []
    if absorbed:
        kinds.append("merged")
    if is_ and not was:
        kinds.append("became_customer")
    elif was and not is_:
        kinds.append("no_longer_customer")
    if stage_before != stage_after:
        kinds.append("stage_changed")
    return [
        Change(
            kind,
            existing_customer=is_,
            orders_count=after.orders_count,
            stage_before=stage_before,
            stage_after=stage_after,
            absorbed=tuple(absorbed) if kind == "merged" else (),
        )
        for kind in kinds
    ]


@dataclass(frozen=True, slots=True)
class Describer:
    """Names the changes an applied event causes, as of ``now`` under the lifecycle rules
    (the native fold takes the same two)."""

    now: int
    rules: LifecycleRules

    def __call__(
        self, before: LookupSummary | None, after: LookupSummary, event: ResolvedEvent
    ) -> list[Change]:
        return profile_changes(before, after, self.now, self.rules, event.absorbed)

    def native(self) -> tuple[int, tuple[int, int, int, int]]:
        """The same as the native fold takes it."""
        r = self.rules
        return self.now, (
            r.repeat_min_orders,
            r.loyal_min_orders,
            r.at_risk_after_days,
            r.lapsed_after_days,
        )
