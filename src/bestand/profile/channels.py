"""The channel to reach a person by, from how they were reached and how they buy.

All channels live in one state: e-mail engagement, calls, store visits and the channel of
every order. Withdrawn consent or a hard bounce rules a channel out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bestand.profile.state import OrderRecord, PersonState

#: Ties go to the channel that costs the shop least.
_PREFERENCE = ("email", "phone", "store", "chat")


def preferred_channel(state: PersonState, kept: Sequence[OrderRecord] | None = None) -> str | None:
    """The contact channel with most signals, or ``None`` when nothing points anywhere.

    ``kept`` saves recomputing the state's kept orders when the caller has them.
    """
    score: Counter[str] = Counter()
    score["email"] = state.email.get("opened", 0) + 2 * state.email.get("clicked", 0)
    for channel, count in state.contacts.items():
        score[channel] += 2 * count
    for order in state.kept_orders if kept is None else kept:
        if order.channel in ("phone", "store"):
            score[order.channel] += 1
    consent = state.consent_flags
    if consent.get("email") is False or state.email.get("bounced", 0) > 0:
        score["email"] = 0
    if consent.get("phone") is False:
        score["phone"] = 0
    best = max(_PREFERENCE, key=lambda c: (score[c], -_PREFERENCE.index(c)))
    return best if score[best] > 0 else None
