"""The resolution goals, checked against one evaluation: met or missed, and by how much.

The goals are what bestand promises a shop (see the README): returning guests are found, two
people are almost never joined, and the number of customers comes out close to the truth. Each
check also gives what the data allows, so a miss says whether the resolver or the shop's data
is short: no resolver joins orders that share no identifier without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Share of the pairs of a returning guest's orders that must be found (orders that name
#: someone: an anonymous cash sale is nobody's to find).
MIN_RETURNING_GUEST_RECALL = 0.98
#: Wrong merges as a share of all merges.
MAX_WRONG_MERGE_SHARE = 0.001
#: How far the resolved customer count may be from the true one, as a share of it.
MAX_CUSTOMER_COUNT_ERROR = 0.02
#: How far below what the data allows the share of cookies answered right may be (cookies
#: that can be tied to a person: "existing customer?" for who uses the browser now).
MAX_COOKIE_SHORTFALL = 0.002


@dataclass(frozen=True, slots=True)
class GoalCheck:
    """One goal: what it asks, what was measured, what the data allows, and whether it holds."""

    goal: str
    measured: str
    allows: str | None
    met: bool
    #: For a miss, whose it is: "the data" when even the best resolution would miss it too.
    short_by: str | None = None


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def check_goals(
    *,
    returning_guest_recall: float,
    returning_guest_ceiling: float,
    merges: int,
    wrong_merges: int,
    merges_through_junk: int,
    true_customers: int,
    resolved_customers: int,
    ceiling_customers: int,
    cookies_right: float | None = None,
    cookies_allowed: float | None = None,
    shared_right: float | None = None,
    shared_allowed: float | None = None,
) -> list[GoalCheck]:
    """Check the goals (the cookie goal when its shares are given); plain numbers in, so it
    is tested without a replay."""
    share = wrong_merges / merges if merges else 0.0
    error = (resolved_customers - true_customers) / true_customers if true_customers else 0.0
    best = (ceiling_customers - true_customers) / true_customers if true_customers else 0.0
    recall_met = returning_guest_recall >= MIN_RETURNING_GUEST_RECALL
    count_met = abs(error) <= MAX_CUSTOMER_COUNT_ERROR
    return [
        GoalCheck(
            goal=f"returning guests found: recall >= {_pct(MIN_RETURNING_GUEST_RECALL)}",
            measured=_pct(returning_guest_recall),
            allows=_pct(returning_guest_ceiling),
            met=recall_met,
            short_by=None
            if recall_met
            else _whose(returning_guest_ceiling >= MIN_RETURNING_GUEST_RECALL),
        ),
        GoalCheck(
            goal=f"wrong merges <= {_pct(MAX_WRONG_MERGE_SHARE)} of merges, none through junk",
            measured=f"{_pct(share)} ({wrong_merges} of {merges}), {merges_through_junk} "
            "through junk",
            allows=None,
            met=share <= MAX_WRONG_MERGE_SHARE and merges_through_junk == 0,
        ),
        GoalCheck(
            goal=f"customers counted within {MAX_CUSTOMER_COUNT_ERROR:.0%} of the true number",
            measured=f"{error:+.2%}",
            allows=f"{best:+.2%}",
            met=count_met,
            short_by=None if count_met else _whose(abs(best) <= MAX_CUSTOMER_COUNT_ERROR),
        ),
        *_cookie_goal(
            "cookies that can be tied answered right (existing customer? for who uses it now)",
            cookies_right,
            cookies_allowed,
        ),
        *_cookie_goal(
            "cookies shared by several persons answered for their last user",
            shared_right,
            shared_allowed,
        ),
    ]


def _cookie_goal(what: str, right: float | None, allowed: float | None) -> list[GoalCheck]:
    if right is None or allowed is None:
        return []
    met = right >= allowed - MAX_COOKIE_SHORTFALL
    return [
        GoalCheck(
            goal=f"{what} within {100 * MAX_COOKIE_SHORTFALL:.1f} points of what the data allows",
            measured=_pct(right),
            allows=_pct(allowed),
            met=met,
            short_by=None if met else "the resolver",
        )
    ]


def _whose(data_allows_it: bool) -> str:
    """Who misses a goal: the resolver when the data would allow it, else the data."""
    return "the resolver" if data_allows_it else "the data"
