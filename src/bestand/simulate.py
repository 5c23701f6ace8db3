"""A simulated shop: realistic event streams with the truth of who is who.

Visitors browse, register or check out as guests, come back with another spelling of their
e-mail or phone, buy in the store, open newsletters, cancel and return. Every event is a plain
dict that validates against the input contracts; ``truth`` maps each event to its real person
so identity resolution can be checked against it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FIRST_NAMES = [
    "Jana",
    "Lukas",
    "Mia",
    "Leon",
    "Emma",
    "Finn",
    "Hannah",
    "Paul",
    "Lea",
    "Jonas",
    "Sophie",
    "Elias",
    "Marie",
    "Noah",
    "Lina",
    "Ben",
    "Anna",
    "Felix",
    "Laura",
    "Tim",
    "Jürgen",
    "Özlem",
]
LAST_NAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Braun",
]
MAIL_DOMAINS = ["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.com", "posteo.de"]
CAMPAIGNS = ["black-friday", "newsletter-kw47", "sem-brand", "sem-generic", "affiliate-cashback"]
AFFILIATES = ["aff-101", "aff-202", "aff-303"]
PRODUCTS = [f"SKU-{n:04d}" for n in range(1, 200)]
_ASCII = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
)


@dataclass
class Persona:
    """One real person of the simulated shop."""

    key: str
    first: str
    last: str
    email: str
    phone: str
    customer_id: str | None
    cookies: list[str] = field(default_factory=list)
    kind: str = "browser"


@dataclass
class SimulatedShop:
    """Events in time order plus the real person behind each one."""

    events: list[dict[str, Any]]
    truth: dict[str, str]
    personas: list[Persona]


def _email_variant(rng: random.Random, email: str) -> str:
    """Another way the same person types the same address."""
    local, domain = email.split("@")
    choices = [
        lambda: email.upper(),
        lambda: f"  {email}  ",
        lambda: f"{local.capitalize()}@{domain.upper()}",
    ]
    if domain == "gmail.com":
        choices += [
            lambda: f"{local.replace('.', '')}@gmail.com",
            lambda: f"{local}+shop@gmail.com",
            lambda: f"{local.replace('.', '')}+{rng.randint(1, 99)}@Gmail.com",
        ]
    return rng.choice(choices)()


def _phone_variant(rng: random.Random, phone: str) -> str:
    """The same German mobile number written another way (+49 151..., 0151 ..., 0049...)."""
    national = phone.removeprefix("+49")
    return rng.choice(
        [
            phone,
            f"0{national[:3]} {national[3:]}",
            f"+49 {national[:3]} {national[3:6]} {national[6:]}",
            f"0049{national}",
            f"(0{national[:3]}) {national[3:]}",
        ]
    )


class _Builder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.events: list[dict[str, Any]] = []
        self.truth: dict[str, str] = {}
        self._seq = 0

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq:07d}"

    def emit(self, persona: Persona, at: datetime, event: dict[str, Any]) -> dict[str, Any]:
        event = {"event_id": self._id("ev"), "event_time": at.isoformat(), **event}
        self.events.append(event)
        self.truth[event["event_id"]] = persona.key
        return event

    def attribution(self) -> dict[str, str] | None:
        roll = self.rng.random()
        if roll < 0.5:
            return None
        if roll < 0.75:
            return {"campaign": self.rng.choice(CAMPAIGNS), "utm_source": "google"}
        return {"affiliate_id": self.rng.choice(AFFILIATES), "utm_medium": "affiliate"}

    def visit(self, persona: Persona, at: datetime, cookie: str) -> None:
        for step in range(self.rng.randint(1, 4)):
            product = self.rng.choice(PRODUCTS)
            self.emit(
                persona,
                at + timedelta(seconds=30 * step),
                {
                    "type": self.rng.choice(["page_view", "product_view"]),
                    "anonymous_id": cookie,
                    "customer_id": persona.customer_id,
                    "url": f"https://shop.example/p/{product}",
                    "product_id": product,
                    "attribution": self.attribution(),
                },
            )
        # page_view carries no product_id: drop it so the event validates.
        for event in self.events[-4:]:
            if event["type"] == "page_view":
                event.pop("product_id", None)

    def order(
        self,
        persona: Persona,
        at: datetime,
        *,
        guest: bool,
        email: str | None,
        phone: str | None,
        channel: str,
        cookie: str | None,
    ) -> str:
        order_id = self._id("ord")
        customer: dict[str, Any] = {"guest": guest}
        if not guest:
            customer["customer_id"] = persona.customer_id
        if email:
            customer["email"] = email
        if phone:
            customer["phone"] = phone
        customer["first_name"] = persona.first
        customer["last_name"] = persona.last
        self.emit(
            persona,
            at,
            {
                "type": "order_placed",
                "order_id": order_id,
                "total": f"{self.rng.uniform(9, 240):.2f}",
                "currency": "EUR",
                "channel": channel,
                "customer": customer,
                "anonymous_id": cookie,
                "attribution": self.attribution() if channel in ("web", "app") else None,
                "items": self.rng.randint(1, 5),
            },
        )
        return order_id

    def persona(self, index: int, kind: str) -> Persona:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower().translate(_ASCII)
        if self.rng.random() < 0.3:
            local += str(self.rng.randint(1, 99))
        email = f"{local}@{self.rng.choice(MAIL_DOMAINS)}"
        phone = f"+49151{self.rng.randint(10_000_000, 99_999_999)}"
        registered = kind in ("registered", "loyal_registered")
        return Persona(
            key=f"person-{index:06d}",
            first=first,
            last=last,
            email=email,
            phone=phone,
            customer_id=f"K{100000 + index}" if registered else None,
            cookies=[f"ck-{index:06d}-{n}" for n in range(3)],
            kind=kind,
        )

    def day(self, max_days: int = 400) -> datetime:
        return self.now - timedelta(
            days=self.rng.uniform(1, max_days), seconds=self.rng.randint(0, 86399)
        )


def featured_guest(builder: _Builder) -> Persona:
    """Jana, the loyal guest of the demo: two orders, two spellings of one Gmail address."""
    jana = Persona(
        key="person-jana",
        first="Jana",
        last="Schmidt",
        email="jana.schmidt@gmail.com",
        phone="+4915112345678",
        customer_id=None,
        cookies=["ck-jana-laptop", "ck-jana-phone"],
        kind="loyal_guest",
    )
    first = builder.now - timedelta(days=40)
    builder.visit(jana, first - timedelta(minutes=10), jana.cookies[0])
    builder.order(
        jana,
        first,
        guest=True,
        email="Jana.Schmidt@gmail.com",
        phone=None,
        channel="web",
        cookie=jana.cookies[0],
    )
    second = builder.now - timedelta(days=3)
    builder.visit(jana, second - timedelta(minutes=5), jana.cookies[1])
    builder.order(
        jana,
        second,
        guest=True,
        email=" JANASCHMIDT+angebot@GMAIL.com ",
        phone="0151 1234 5678",
        channel="app",
        cookie=jana.cookies[1],
    )
    return jana


def simulate(persons: int = 200, seed: int = 7, now: datetime | None = None) -> SimulatedShop:
    """Simulate ``persons`` people over the last ~400 days, plus the featured loyal guest."""
    builder = _Builder(seed, now or datetime.now(UTC).replace(microsecond=0))
    rng = builder.rng
    personas = [featured_guest(builder)]
    kinds = ["browser"] * 30 + ["one_time"] * 25 + ["registered"] * 20 + ["loyal_guest"] * 15
    kinds += ["store_and_web"] * 10
    for index in range(persons):
        persona = builder.persona(index, rng.choice(kinds))
        personas.append(persona)
        for _ in range(rng.randint(1, 3)):
            builder.visit(persona, builder.day(), rng.choice(persona.cookies))
        if persona.kind == "browser":
            continue
        orders = {"one_time": 1, "registered": rng.randint(1, 6)}.get(
            persona.kind, rng.randint(2, 5)
        )
        order_ids = []
        for n in range(orders):
            at = builder.day()
            guest = persona.customer_id is None
            email: str | None = persona.email if n == 0 else _email_variant(rng, persona.email)
            phone = _phone_variant(rng, persona.phone) if rng.random() < 0.6 else None
            channel = "store" if persona.kind == "store_and_web" and n % 2 else "web"
            if channel == "store":
                email = None
                phone = _phone_variant(rng, persona.phone)
            order_ids.append(
                builder.order(
                    persona,
                    at,
                    guest=guest,
                    email=email,
                    phone=phone,
                    channel=channel,
                    cookie=None if channel == "store" else rng.choice(persona.cookies),
                )
            )
        if order_ids and rng.random() < 0.1:
            builder.emit(
                persona, builder.day(30), {"type": "order_cancelled", "order_id": order_ids[-1]}
            )
        if order_ids and rng.random() < 0.1:
            builder.emit(
                persona, builder.day(30), {"type": "order_returned", "order_id": order_ids[0]}
            )
        if rng.random() < 0.5:
            for kind in ("email_sent", "email_delivered", "email_opened"):
                builder.emit(
                    persona,
                    builder.day(60),
                    {"type": kind, "email": persona.email, "campaign": "newsletter-kw47"},
                )
        if rng.random() < 0.3:
            builder.emit(
                persona,
                builder.day(),
                {
                    "type": "consent_changed",
                    "identifiers": {"email": persona.email},
                    "consent": {"email": rng.random() < 0.8, "ads": rng.random() < 0.5},
                },
            )
    # Drop null fields, as real producers do, and order by event time.
    events = [{k: v for k, v in e.items() if v is not None} for e in builder.events]
    events.sort(key=lambda e: e["event_time"])
    return SimulatedShop(events=events, truth=builder.truth, personas=personas)
