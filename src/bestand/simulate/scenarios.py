"""What kinds of people the simulated shop has, and how often: the one table to read.

Every person has one *kind* (what they do as a customer; the shares add up to 1) and any number
of *traits* (situations that make identity resolution hard: shared identifiers, misspellings,
namesakes). The truth about who is who never depends on them: they only decide which
identifiers the shop gets to see.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """A kind of person: share of all persons, orders they place, what they do."""

    kind: str
    share: float
    orders: tuple[int, int]
    description: str


#: Kinds of person. Shares are exact (largest remainder), so counts scale with ``persons``.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("browser", 0.28, (0, 0), "browses web or app, never buys"),
    Scenario("new_customer", 0.20, (1, 1), "really new: one order, as guest or with an account"),
    Scenario(
        "registered",
        0.15,
        (2, 8),
        "customer account, logs in on web and app (identify); sometimes checks out as guest",
    ),
    Scenario(
        "loyal_guest",
        0.13,
        (2, 6),
        "guest every time: e-mail spellings, phone formats, a new cookie per device",
    ),
    Scenario(
        "omnichannel_guest",
        0.10,
        (2, 6),
        "guest online, then in store or by phone: phone, loyalty card, name+address, "
        "no e-mail or a dummy one",
    ),
    Scenario(
        "typo_guest",
        0.04,
        (2, 5),
        "loyal guest with an e-mail typo in one order, linkable only by phone, address+name, "
        "cookie or card",
    ),
    Scenario(
        "walk_in", 0.10, (1, 4), "store only: staff type a shared dummy e-mail or none at all"
    ),
)

KINDS: tuple[str, ...] = tuple(scenario.kind for scenario in SCENARIOS)
SCENARIO_BY_KIND: dict[str, Scenario] = {scenario.kind: scenario for scenario in SCENARIOS}
#: Kinds that never have a customer account.
GUEST_KINDS = frozenset({"loyal_guest", "omnichannel_guest", "typo_guest", "walk_in"})


@dataclass(frozen=True)
class Trait:
    """A situation some persons are in: how often, among whom, and why it matters."""

    name: str
    rate: float
    among: str
    description: str


#: Traits. ``rate`` applies to the persons (or households) named in ``among``; a trait is only
#: counted for persons whose events really show it.
TRAITS: tuple[Trait, ...] = (
    Trait("household", 0.25, "persons", "lives with 1–3 others: same address and surname"),
    Trait(
        "household_shared_cookie",
        0.30,
        "households",
        "family laptop: members browse and order on one cookie",
    ),
    Trait("household_shared_card", 0.15, "households", "a member pays with another's card"),
    Trait(
        "household_shared_email",
        0.40,
        "households with 2+ account holders",
        "members with their own customer_id give the family e-mail",
    ),
    Trait(
        "household_shared_email_guests",
        0.05,
        "households with 2+ guest buyers",
        "rare: two guests order with one family e-mail; no identifier can tell them apart",
    ),
    Trait("namesake", 0.03, "persons", "a common full name (e.g. Thomas Müller), other address"),
    Trait("email_typo", 1.0, "typo_guest", "one order with a misspelt e-mail"),
    Trait("email_variant", 0.85, "repeat guests", "other case, whitespace, Gmail dots, +tags"),
    Trait("phone_variant", 0.9, "phone givers", "+49 151…, 0151 …, 0049…, (0151) …"),
    Trait(
        "dummy_email",
        0.6,
        "walk-in store orders (0.3 for other guests)",
        "staff type a common dummy (kunde@shop.de, null)",
    ),
    Trait("shop_dummy_email", 0.2, "dummy e-mails", "shop-specific dummy not on a pattern list"),
    Trait("fake_phone", 0.04, "buyers", "gives 0000000000 or 0123456789"),
    Trait(
        "phone_digit_missing",
        0.05,
        "persons",
        "types their phone with one digit missing, the same way on every order (not a valid "
        "number, but the same one each time)",
    ),
    Trait(
        "phone_digit_run",
        0.02,
        "persons",
        "a real number whose subscriber part is a digit run (0171 2345678)",
    ),
    Trait(
        "email_stray_space",
        0.05,
        "persons",
        "types a stray space into their e-mail on some orders (anna.koch @gmail.com)",
    ),
    Trait("name_variant", 0.3, "orders by umlaut names", "Müller / Mueller / MÜLLER"),
    Trait("address_variant", 0.25, "orders", "Hauptstraße / Hauptstr., 12a / 12 A, 1012AB"),
    Trait(
        "loyalty_card",
        0.55,
        "walk-ins and omnichannel guests (0.25 registered, 0.05 others)",
        "holds a card, signed up for with their e-mail (and phone, if they give one); shows "
        "it in store (90 %), typed with spaces or dashes",
    ),
    Trait(
        "card_reuse",
        0.9,
        "web and app orders",
        "pays with a card token (8 % a new card): the same token links orders",
    ),
    Trait(
        "store_card_payer",
        0.45,
        "persons",
        "pays by card in the store (90 % of visits, else cash); others pay cash (95 %)",
    ),
    Trait(
        "e_receipt",
        0.0,
        "store sales",
        "gives their own e-mail at the till for a digital receipt (off unless --e-receipts)",
    ),
    Trait("guest_throwaway_id", 0.25, "guest orders", "a throw-away guest customer number"),
    Trait("registered_guest_checkout", 0.25, "registered", "once checks out as guest"),
    Trait("app_user", 0.3, "persons", "uses the app: device id on clicks and app orders"),
    Trait("newsletter", 0.45, "persons with an e-mail", "receives, opens, clicks newsletters"),
    Trait("foreign", 0.14, "persons", "lives in AT, NL or GB: other phone and postcode shapes"),
)

TRAIT_NAMES: tuple[str, ...] = tuple(trait.name for trait in TRAITS)
