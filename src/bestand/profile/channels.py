"""The channel to reach a person by, from how they were reached and how they buy.

All channels live in one state: e-mail engagement, calls, store visits and the channel of
every order. Withdrawn consent or a hard bounce rules a channel out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bestand.profile.state import OrderRecord, PersonState

#: Ties go to the channel that costs the shop least.
_PREFERENCE = ("email", "phone", "store", "chat")


def preferred_channel(
    state: PersonState,
    kept: Sequence[OrderRecord] | None = None,
    consent: Mapping[str, bool] | None = None,
) -> str | None:
    """The contact channel with most signals, or ``None`` when nothing points anywhere.

    ``kept`` and ``consent`` save recomputing the state's kept orders and consent flags when
    the caller has them.
    """
    email = state.email
    score: dict[str, int] = {"email": email.get("opened", 0) + 2 * email.get("clicked", 0)}
    for channel, count in state.contacts.items():
        score[channel] = score.get(channel, 0) + 2 * count
    for order in state.kept_orders if kept is None else kept:
        if order.channel in ("phone", "store"):
            score[order.channel] = score.get(order.channel, 0) + 1
    flags = state.consent_flags if consent is None else consent
    if flags.get("email") is False or email.get("bounced", 0) > 0:
        score["email"] = 0
    if flags.get("phone") is False:
        score["phone"] = 0
    # Ties go to the channel listed first in _PREFERENCE.
    best, points = None, 0
    for channel in _PREFERENCE:
        if score.get(channel, 0) > points:
            best, points = channel, score[channel]
    return best
