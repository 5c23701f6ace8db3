"""``bestand evaluate``: replay a labelled shop through Kafka into Redis and score the result.

The shop's events go to the input topics of an isolated namespace, real worker processes
resolve them, and the identity graph is then read back: every order's predicted person is
compared with the person who really placed it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bestand.children import start_workers, wait_caught_up
from bestand.evaluation.cookies import CookieScores, CookieTruth, cookie_truths, score_cookies
from bestand.evaluation.goals import GoalCheck, check_goals
from bestand.evaluation.junk import JunkAudit, audit_junk, merged_through
from bestand.evaluation.metrics import (
    PairScores,
    customer_counts,
    merge_count,
    naive_customer_key,
    pair_scores,
    wrong_clusters,
    wrong_merge_count,
)
from bestand.evaluation.oracle import ceiling
from bestand.identity import IdentityKeyer, IdKind, InvalidIdentifier
from bestand.identity.entries import parse_entry
from bestand.identity.explain import describe
from bestand.identity.junk import JunkRules
from bestand.ingest import EventProducer
from bestand.namespace import namespaced, reset
from bestand.settings import Settings
from bestand.simulate import SimulatedShop
from bestand.simulate.scenarios import GUEST_KINDS
from bestand.store import Keys, LookupReader, connect
from bestand.store.explain_log import log_entries, queue_log

EVAL_NAMESPACE = "bestand-eval"
EVAL_REDIS_PREFIX = "eval"


@dataclass
class WrongMerge:
    """A predicted person that holds orders of several real persons, with the explanation."""

    person_id: str
    true_persons: dict[str, int]
    history: list[str]


#: The lines of the cookie check, in the order the report prints them.
COOKIE_LINES = ("order", "login or sign-up", "device", "never", "can be tied",
                "shared by several persons", "all")  # fmt: skip
#: Lines of the report that list why identifiers were not used (the rest summed up).
_UNUSED_LINES = 15


def _by_count(counts: Mapping[tuple[str, str, str], int]) -> list[tuple[tuple[str, str, str], int]]:
    """Reasons by how often they occur, the most common first."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass
class EvaluationReport:
    """Figures of one evaluation run."""

    persons: int
    events: int
    orders: int
    seconds: float
    scores: PairScores
    scores_by_kind: dict[str, PairScores]
    ceiling: PairScores
    ceiling_by_kind: dict[str, PairScores]
    #: Guests of every kind who order more than once (no account ties their orders together),
    #: over their orders that name someone: an anonymous sale cannot be recognised by anyone,
    #: and it makes nobody a customer (see :func:`customer_counts`).
    returning_guests: PairScores
    returning_guests_ceiling: PairScores
    guest_anonymous_orders: int
    ceiling_customers: int
    true_customers: int
    naive_customers: int
    anonymous_orders: int
    resolved_customers: int
    merges: int
    wrong_merges: int
    junk_flagged: int
    #: Merges through an identifier junk at the time: by pattern, or flagged before the merge.
    merges_through_junk: int
    #: Merges through an identifier that its cardinality flagged only later: to review.
    merges_through_later_junk: int
    wrong: list[WrongMerge] = field(default_factory=list)
    #: Identifiers named by events that never link: (kind, refused or junk by pattern, why)
    #: and how many times an event named one.
    unused: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: Cookie by cookie, "existing customer?" for who uses it now (None: not asked).
    cookies: CookieScores | None = None

    @property
    def wrong_merge_share(self) -> float:
        """Wrong merges as a share of all merges."""
        return self.wrong_merges / self.merges if self.merges else 0.0

    def goals(self) -> list[GoalCheck]:
        """The resolution goals, met or missed on this run."""
        c = self.cookies
        return check_goals(
            returning_guest_recall=self.returning_guests.recall,
            returning_guest_ceiling=self.returning_guests_ceiling.recall,
            merges=self.merges,
            wrong_merges=self.wrong_merges,
            merges_through_junk=self.merges_through_junk,
            true_customers=self.true_customers,
            resolved_customers=self.resolved_customers,
            ceiling_customers=self.ceiling_customers,
            cookies_right=None if c is None else c.share(c.right, "can be tied"),
            cookies_allowed=None if c is None else c.share(c.allows, "can be tied"),
            shared_right=None if c is None else c.share(c.right, "shared by several persons"),
            shared_allowed=None if c is None else c.share(c.allows, "shared by several persons"),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""

        def scores(s: PairScores) -> dict[str, float | int]:
            return {
                "precision": s.precision,
                "recall": s.recall,
                "f1": s.f1,
                "true_pairs": s.true_pairs,
                "predicted_pairs": s.predicted_pairs,
                "correct_pairs": s.correct_pairs,
            }

        return {
            "persons": self.persons,
            "events": self.events,
            "orders": self.orders,
            "seconds": round(self.seconds, 1),
            "events_per_second": round(self.events / self.seconds, 1) if self.seconds else None,
            "same_person": scores(self.scores),
            "same_person_by_kind": {k: scores(v) for k, v in self.scores_by_kind.items()},
            "returning_guests": scores(self.returning_guests),
            "returning_guests_anonymous_orders_left_out": self.guest_anonymous_orders,
            "ceiling": {
                "same_person": scores(self.ceiling),
                "same_person_by_kind": {k: scores(v) for k, v in self.ceiling_by_kind.items()},
                "returning_guests": scores(self.returning_guests_ceiling),
                "customers": self.ceiling_customers,
            },
            "cookies": None
            if self.cookies is None
            else {
                line: {
                    "cookies": self.cookies.cookies[line],
                    "right": self.cookies.share(self.cookies.right, line),
                    "data_allows": self.cookies.share(self.cookies.allows, line),
                    "naive": self.cookies.share(self.cookies.naive, line),
                }
                for line in COOKIE_LINES
                if self.cookies.cookies[line]
            },
            "identifiers_not_used": [
                {"kind": kind, "as": how, "why": why, "mentions": count}
                for (kind, how, why), count in _by_count(self.unused)
            ],
            "customers": {
                "true": self.true_customers,
                "naive": self.naive_customers,
                "anonymous_orders": self.anonymous_orders,
                "resolved": self.resolved_customers,
            },
            "merges": self.merges,
            "wrong_merges": self.wrong_merges,
            "wrong_merge_share": self.wrong_merge_share,
            "junk_flagged_identifiers": self.junk_flagged,
            "merges_through_junk_identifiers": self.merges_through_junk,
            "merges_through_identifiers_flagged_later": self.merges_through_later_junk,
            "wrong_merge_examples": [w.__dict__ for w in self.wrong],
            "goals": [asdict(goal) for goal in self.goals()],
        }


def returning_guest_orders(
    truth: Mapping[str, str], kinds: Mapping[str, str], anonymous: Collection[str]
) -> tuple[dict[str, str], int]:
    """Orders of guests (order id -> real person) that name someone, and how many do not.

    The returning-guest goal is about recognising people: a sale that carries nothing but its
    own order id (cash, no card, no phone, no usable e-mail) names nobody, so no resolver and
    no cashier can tell whose it is, and it makes nobody a customer either.
    """
    guests = {o: person for o, person in truth.items() if kinds.get(person) in GUEST_KINDS}
    named = {o: person for o, person in guests.items() if o not in anonymous}
    return named, len(guests) - len(named)


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def format_report(report: EvaluationReport) -> str:
    """The report as the terminal shows it."""
    s = report.scores
    lines = [
        f"persons {report.persons}, events {report.events}, orders {report.orders}, "
        f"replayed in {report.seconds:.1f} s ({report.events / max(report.seconds, 1e-9):.0f} "
        "events/s)",
        "",
        "same person (pairs of orders):",
        f"  all orders            precision {_percent(s.precision)}  recall {_percent(s.recall)}"
        f"  F1 {_percent(s.f1)}  ({s.correct_pairs}/{s.true_pairs} true pairs found, "
        f"{s.predicted_pairs} predicted)",
    ]
    for kind, k in sorted(report.scores_by_kind.items()):
        best = report.ceiling_by_kind.get(kind)
        allowed = f"  the data allows {_percent(best.recall)}" if best else ""
        lines.append(
            f"  {kind:21} precision {_percent(k.precision)}  recall {_percent(k.recall)}"
            f"  ({k.correct_pairs}/{k.true_pairs} true pairs){allowed}"
        )
    g = report.returning_guests
    lines.append(
        f"  {'returning guests':21} precision {_percent(g.precision)}  recall "
        f"{_percent(g.recall)}  ({g.correct_pairs}/{g.true_pairs} true pairs)  the data allows "
        f"{_percent(report.returning_guests_ceiling.recall)}  (the guest kinds above together, "
        f"without their {report.guest_anonymous_orders} anonymous sales)"
    )
    lines.append(
        "  (orders that share no linking identifier with the rest of their person's cannot be "
        f"joined without guessing: the data allows recall {_percent(report.ceiling.recall)})"
    )
    t, n, r = report.true_customers, report.naive_customers, report.resolved_customers
    c = report.ceiling_customers
    lines += [
        "",
        f"customers with an order ({report.anonymous_orders} anonymous sales, e.g. cash without "
        "card, phone or a usable e-mail, name nobody and are not counted):",
        f"  true {t}   the shop without bestand would count {n} ({(n - t) / t:+.1%})   "
        f"bestand counts {r} ({(r - t) / t:+.1%})   the data allows {c} ({(c - t) / t:+.1%})"
        if t
        else "  no customers",
        "",
        f"merges {report.merges}, wrong merges {report.wrong_merges} "
        f"({_percent(report.wrong_merge_share)} of merges)",
        f"identifiers flagged as junk by their cardinality: {report.junk_flagged}; merges "
        f"through an identifier junk at the time (by pattern, or flagged before): "
        f"{report.merges_through_junk}; through one flagged only later, when it met more "
        f"persons: {report.merges_through_later_junk}",
    ]
    if report.cookies is not None:
        scores = report.cookies
        lines += [
            "",
            'cookie by cookie, "existing customer?" for who uses it now, by how it was tied to '
            "a person:",
        ]
        for line in COOKIE_LINES:
            if scores.cookies[line]:
                lines.append(
                    f"  {line:26} {scores.cookies[line]:7} cookies  bestand "
                    f"{_percent(scores.share(scores.right, line))}  the data allows "
                    f"{_percent(scores.share(scores.allows, line))}  a shop's naive view "
                    f"{_percent(scores.share(scores.naive, line))}"
                )
    if report.unused:
        lines += [
            "",
            "identifiers named by events but never used to link (how often an event named one):",
        ]
        ranked = _by_count(report.unused)
        for (kind, how, why), count in ranked[:_UNUSED_LINES]:
            lines.append(f"  {kind:13} {how:16} {count:7}  {why}")
        if len(ranked) > _UNUSED_LINES:
            rest = sum(count for _, count in ranked[_UNUSED_LINES:])
            lines.append(f"  … {len(ranked) - _UNUSED_LINES} more reasons, {rest} mentions")
    lines += ["", "goals:"]
    for goal in report.goals():
        allows = f" (the data allows {goal.allows})" if goal.allows else ""
        verdict = "met" if goal.met else "MISSED"
        whose = f": short by {goal.short_by}" if goal.short_by else ""
        lines.append(f"  {verdict:6}  {goal.goal}; measured {goal.measured}{allows}{whose}")
    for wrong in report.wrong[:5]:
        lines.append(
            f"\nwrong merge: person {wrong.person_id} holds orders of {wrong.true_persons}"
        )
        lines.extend(f"    {line}" for line in wrong.history[-12:])
    return "\n".join(lines)


async def _predictions(settings: Settings, order_ids: Sequence[str]) -> dict[str, str]:
    """order id -> person id, read from the identity graph."""
    keyer = IdentityKeyer(
        settings.hmac_secret.get_secret_value().encode(), settings.default_phone_region
    )
    keys = Keys(settings.redis_prefix)
    client = connect(settings.redis_url)
    out: dict[str, str] = {}
    try:
        for start in range(0, len(order_ids), 5000):
            chunk = order_ids[start : start + 5000]
            tokens = [keyer.key(IdKind.ORDER, oid).token for oid in chunk]
            async with client.pipeline(transaction=False) as pipe:
                for token in tokens:
                    pipe.hget(*keys.entry(token))
                owners = await pipe.execute()
            out.update(
                {
                    oid: owner.decode() if isinstance(owner, bytes) else str(owner)
                    for oid, owner in zip(chunk, owners, strict=True)
                    if owner is not None
                }
            )
    finally:
        await client.aclose()
    return out


async def _junk_audit(
    settings: Settings, persons: Sequence[str], pattern_junk: frozenset[str]
) -> tuple[JunkAudit, dict[str, list[dict[str, Any]]]]:
    """Junk flags and merges through junk (see :mod:`bestand.evaluation.junk`), every log."""
    keys = Keys(settings.redis_prefix)
    client = connect(settings.redis_url)
    try:
        logs: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(persons), 2000):
            chunk = persons[start : start + 2000]
            async with client.pipeline(transaction=False) as pipe:
                for person in chunk:
                    queue_log(pipe, keys, person)
                replies = await pipe.execute()
            for n, person in enumerate(chunk):
                entries = log_entries(replies[2 * n], replies[2 * n + 1])
                logs[person] = [parse_entry(e) for e in entries]
        merged = sorted(merged_through(logs) - pattern_junk)
        values = await client.mget([keys.junk(t) for t in merged]) if merged else []
        junk_now = {t for t, v in zip(merged, values, strict=True) if v is not None}
        return audit_junk(logs, pattern_junk, junk_now), logs
    finally:
        await client.aclose()


async def _cookie_answers(
    settings: Settings, keyer: IdentityKeyer, truths: Sequence[CookieTruth]
) -> dict[str, bool]:
    """Cookie -> what its lookup record answers to "existing customer?" (unknown: no)."""
    tokens: dict[str, str] = {}
    for truth in truths:
        try:
            tokens[truth.cookie] = keyer.key(IdKind.ANONYMOUS, truth.cookie).token
        except InvalidIdentifier:
            continue
    client = connect(settings.redis_url)
    reader = LookupReader(client, Keys(settings.redis_prefix))
    answers: dict[str, bool] = {}
    try:
        cookies = list(tokens)
        for start in range(0, len(cookies), 5000):
            chunk = cookies[start : start + 5000]
            summaries = await reader.get_many([tokens[cookie] for cookie in chunk])
            answers.update(
                (cookie, summary is not None and summary.existing_customer)
                for cookie, summary in zip(chunk, summaries, strict=True)
            )
    finally:
        await client.aclose()
    return answers


async def _produce(settings: Settings, events: Sequence[Mapping[str, Any]]) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_all(list(events))  # type: ignore[arg-type]


def evaluate(
    settings: Settings,
    shop: SimulatedShop,
    *,
    workers: int = 2,
    log_dir: Path,
    report: Callable[[str], None] = print,
) -> EvaluationReport:
    """Replay ``shop`` through Kafka and Redis in the evaluation namespace; score it."""
    keyer = IdentityKeyer(
        settings.hmac_secret.get_secret_value().encode(),
        settings.default_phone_region,
        JunkRules.default(settings.junk_email_patterns, settings.junk_phone_patterns),
    )
    best = ceiling(shop.events, shop.truth, keyer, settings.policy)
    settings = namespaced(settings, EVAL_NAMESPACE, EVAL_REDIS_PREFIX)
    asyncio.run(reset(settings))
    report(f"  fresh namespace: topics {EVAL_NAMESPACE}.*, Redis keys {EVAL_REDIS_PREFIX}:*")
    children = start_workers(settings, workers, log_dir, "eval")
    try:
        started = time.monotonic()
        report(f"  producing {len(shop.events)} events with {workers} worker process(es) running")
        asyncio.run(_produce(settings, shop.events))
        asyncio.run(wait_caught_up(settings, children, len(shop.events), report=report))
        seconds = time.monotonic() - started
    finally:
        for child in children:
            child.stop()

    orders = [e for e in shop.events if e["type"] == "order_placed"]
    order_ids = [str(e["order_id"]) for e in orders]
    predicted = asyncio.run(_predictions(settings, order_ids))
    truth = {str(e["order_id"]): shop.truth[str(e["event_id"])] for e in orders}
    kinds = {p.key: p.kind for p in shop.personas}
    by_kind: dict[str, PairScores] = {}
    best_by_kind: dict[str, PairScores] = {}
    for kind in sorted(set(kinds.values())):
        subset = {oid: person for oid, person in truth.items() if kinds.get(person) == kind}
        if len(subset) > 1:
            by_kind[kind] = pair_scores(subset, {o: predicted[o] for o in subset if o in predicted})
            best_by_kind[kind] = pair_scores(subset, {o: best.labels[o] for o in subset})
    guests, guest_anonymous = returning_guest_orders(truth, kinds, best.anonymous)
    counts = customer_counts(shop.events, shop.truth, predicted, best.anonymous)
    persons = sorted(set(predicted.values()))
    junk, logs = asyncio.run(_junk_audit(settings, persons, best.junk))
    cookie_truths_ = cookie_truths(shop.events, shop.truth, best.groups.__getitem__)
    wrong = [
        WrongMerge(
            person_id=cluster.predicted_label,
            true_persons=dict(Counter(cluster.true_labels)),
            history=[describe(e) for e in logs.get(cluster.predicted_label, [])],
        )
        for cluster in wrong_clusters(truth, predicted)[:20]
    ]
    return EvaluationReport(
        persons=len(shop.personas),
        events=len(shop.events),
        orders=len(orders),
        seconds=seconds,
        scores=pair_scores(truth, predicted),
        scores_by_kind=by_kind,
        ceiling=best.scores,
        ceiling_by_kind=best_by_kind,
        returning_guests=pair_scores(guests, {o: predicted[o] for o in guests if o in predicted}),
        returning_guests_ceiling=pair_scores(guests, {o: best.labels[o] for o in guests}),
        guest_anonymous_orders=guest_anonymous,
        ceiling_customers=best.customers,
        true_customers=counts.true_customers,
        naive_customers=counts.naive_customers,
        anonymous_orders=counts.anonymous_orders,
        resolved_customers=counts.resolved_customers,
        merges=merge_count(predicted, {str(e["order_id"]): naive_customer_key(e) for e in orders}),
        wrong_merges=wrong_merge_count(truth, predicted),
        junk_flagged=junk.flagged,
        merges_through_junk=junk.through_junk,
        merges_through_later_junk=junk.flagged_later,
        wrong=wrong,
        unused=dict(best.unused),
        cookies=score_cookies(
            cookie_truths_, asyncio.run(_cookie_answers(settings, keyer, cookie_truths_))
        ),
    )
