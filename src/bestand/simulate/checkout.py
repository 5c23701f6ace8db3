"""What one order shows of its buyer: channel, e-mail spelling, phone format, cookie, card.

The shop never sees a person, only what they give at a checkout. :class:`CheckoutChoices`
makes those choices order by order, following the person's :class:`Habits` and the rates in
:mod:`bestand.simulate.scenarios`, and marks a trait on the persona whenever an order shows it.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from bestand.simulate.ids import IdFactory, mailbox
from bestand.simulate.names import (
    AFFILIATES,
    CAMPAIGNS,
    DUMMY_EMAILS,
    FAKE_PHONES,
    MOBILE_PREFIXES_DE,
    SHOP_DUMMY_EMAILS,
)
from bestand.simulate.people import Household, Persona
from bestand.simulate.population import RATE
from bestand.simulate.variants import (
    city_variant,
    email_typo,
    email_variant,
    house_number_variant,
    loyalty_card_variant,
    name_variant,
    phone_variant,
    postcode_variant,
    street_variant,
)

ONLINE = frozenset({"web", "app"})


@dataclass
class Checkout:
    """What one order shows of its buyer."""

    channel: str
    guest: bool
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    loyalty_card: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    address: dict[str, Any] | None = None
    cookie: str | None = None
    device: str | None = None
    card: str | None = None
    attribution: dict[str, str] | None = None


@dataclass
class Habits:
    """How one person tends to behave, decided once so their orders look like one person's."""

    gives_phone: bool
    fake_phone: bool
    varies_email: bool
    varies_phone: bool
    new_cookie_rate: float
    #: In the store: pays by card (not cash) and tells the phone number as a habit, not by chance.
    store_card_payer: bool = False
    store_phone_giver: bool = False
    typo_order: int | None = None
    guest_checkout_order: int | None = None
    app_cookie: str | None = None
    used_cards: list[str] = field(default_factory=list)
    identified: set[str] = field(default_factory=set)
    first_email: str | None = None
    #: The phone as this person always types it wrongly (a digit missing), E.164 digits.
    phone_typed: str | None = None
    #: Types a stray space into their e-mail now and then.
    spaces_email: bool = False


_DUMMIES = frozenset((*DUMMY_EMAILS, *SHOP_DUMMY_EMAILS))


def _shared_email_trait(persona: Persona) -> str:
    """Which trait a member ordering with the family e-mail shows: account holder or guest."""
    return "household_shared_email" if persona.customer_id else "household_shared_email_guests"


class CheckoutChoices:
    """Decides, order by order, what the shop gets to see of its buyer."""

    def __init__(
        self,
        rng: random.Random,
        ids: IdFactory,
        e_receipts: float = 0.0,
        receipts_rng: random.Random | None = None,
        typing_rng: random.Random | None = None,
    ) -> None:
        self.rng = rng
        self.ids = ids
        #: Draws for how people mistype (stray spaces, a digit missing, a number with a digit
        #: run), from a generator of their own: the rest of the shop's draws stay in step.
        self.typing = typing_rng or random.Random(0)
        #: Share of store sales whose buyer gives their own e-mail for a digital receipt, drawn
        #: from a generator of its own: without e-receipts the shop is the same draw for draw.
        self.e_receipts = e_receipts
        self.receipts_rng = receipts_rng or random.Random(0)

    def checkout(
        self, persona: Persona, household: Household, habits: Habits, number: int, channel: str
    ) -> Checkout:
        rng = self.rng
        guest = persona.customer_id is None or number == habits.guest_checkout_order
        if number == habits.guest_checkout_order:
            persona.mark("registered_guest_checkout")
        checkout = Checkout(channel=channel, guest=guest)
        if not guest:
            checkout.customer_id = persona.customer_id
        elif channel in ONLINE and rng.random() < RATE["guest_throwaway_id"]:
            checkout.customer_id = self.ids.guest_id()
            persona.mark("guest_throwaway_id")
        traits = list(persona.traits)
        checkout.email = self._spaced(
            persona, habits, self._email(persona, household, habits, number, channel, guest)
        )
        if channel == "store" and self.receipts_rng.random() < self.e_receipts:
            persona.traits[:] = traits  # what the till would have typed is not shown after all
            checkout.email = self._receipt_email(persona, household, habits)
        checkout.phone = self._phone(persona, habits, channel)
        card_rate = {"store": 0.9, "phone": 0.5}.get(channel, 0.15)
        if persona.loyalty_card and rng.random() < card_rate:
            checkout.loyalty_card = loyalty_card_variant(rng, persona.loyalty_card)
            persona.mark("loyalty_card")
        if channel != "store" or rng.random() < 0.6:
            checkout.first_name, checkout.last_name = self._names(persona)
        if channel != "store" or rng.random() < 0.4:
            checkout.address = self._address(persona)
        if channel == "web":
            checkout.cookie = self.web_cookie(persona, household, habits)
        elif channel == "app":
            checkout.device = persona.devices[0]
            checkout.cookie = self.app_cookie(persona, habits)
        checkout.card = self._card(persona, household, habits, channel)
        if channel in ONLINE:
            checkout.attribution = self.attribution()
        return checkout

    def _email(
        self,
        persona: Persona,
        household: Household,
        habits: Habits,
        number: int,
        channel: str,
        guest: bool,
    ) -> str | None:
        rng = self.rng
        base = persona.email
        sharer = persona.key in household.email_sharers
        if sharer and household.shared_email and (guest or rng.random() < 0.7):
            base = household.shared_email
            persona.mark(_shared_email_trait(persona))
        if habits.first_email is None:
            habits.first_email = base
        if not guest:
            return None if channel == "store" and rng.random() < 0.7 else base
        if channel == "store":
            roll = rng.random()
            dummy_rate = RATE["dummy_email"] if persona.kind == "walk_in" else 0.3
            if roll < dummy_rate:
                if rng.random() < RATE["shop_dummy_email"]:
                    persona.mark("shop_dummy_email")
                    return rng.choice(SHOP_DUMMY_EMAILS)
                persona.mark("dummy_email")
                return rng.choice(DUMMY_EMAILS)
            if persona.kind == "walk_in" or roll < 0.85:
                return None
        if channel == "phone" and (persona.kind == "walk_in" or rng.random() < 0.5):
            return None
        if number == habits.typo_order:
            typo = email_typo(rng, base)
            while self.ids.taken("email", mailbox(typo)):
                typo = email_typo(rng, typo)
            self.ids.reserve("email", mailbox(typo))
            persona.mark("email_typo")
            return typo
        if number == 0:
            return base
        if number == habits.guest_checkout_order or (habits.varies_email and rng.random() < 0.6):
            variant = email_variant(rng, base)
            persona.mark("email_variant")
            return variant
        return base

    def _spaced(self, persona: Persona, habits: Habits, email: str | None) -> str | None:
        """The e-mail with a stray space typed into it, now and then, by those who do."""
        if email is None or not habits.spaces_email or email in _DUMMIES:
            return email  # staff type a dummy the way they always do
        if self.typing.random() >= 0.5:
            return email
        local, at, domain = email.strip().partition("@")
        if not at:
            return email
        persona.mark("email_stray_space")
        match self.typing.randint(0, 2):
            case 0:
                return f"{local} @{domain}"
            case 1:
                return f"{local}@ {domain}"
            case _:
                cut = self.typing.randint(1, max(1, len(local) - 1))
                return f"{local[:cut]} {local[cut:]}@{domain}"

    def digit_missing(self, persona: Persona) -> str | None:
        """The person's number with one digit left out, the way they type it, if no one else
        has that number."""
        national = persona.phone[3:] if persona.phone.startswith("+49") else None
        if national is None or len(national) < 9:
            return None
        cut = self.typing.randint(4, len(national) - 1)
        typed = f"+49{national[:cut]}{national[cut + 1 :]}"
        if self.ids.taken("phone", typed):
            return None
        self.ids.reserve("phone", typed)
        return typed

    def digit_run_phone(self, persona: Persona) -> None:
        """Give the person a real mobile number whose subscriber part is a digit run."""
        prefix, digits = self.typing.choice(MOBILE_PREFIXES_DE)
        start = self.typing.randint(1, 9)
        run = "".join(str((start + i) % 10) for i in range(digits))
        number = f"+49{prefix}{run}"
        if not self.ids.taken("phone", number):
            self.ids.reserve("phone", number)
            persona.phone = number
            persona.mark("phone_digit_run")

    def _receipt_email(self, persona: Persona, household: Household, habits: Habits) -> str:
        """The e-mail a store buyer gives for a digital receipt: the one they shop with."""
        persona.mark("e_receipt")
        base = habits.first_email or persona.email
        if base == household.shared_email:
            persona.mark(_shared_email_trait(persona))
        if habits.varies_email and self.receipts_rng.random() < 0.6:
            persona.mark("email_variant")
            return email_variant(self.receipts_rng, base)
        return base

    def _phone(self, persona: Persona, habits: Habits, channel: str) -> str | None:
        rng = self.rng
        if habits.fake_phone and rng.random() < 0.6:
            persona.mark("fake_phone")
            return rng.choice(FAKE_PHONES)
        in_store = 0.9 if habits.store_phone_giver else 0.05
        rate = {"store": in_store, "phone": 1.0}.get(channel, 0.8 if habits.gives_phone else 0.0)
        if rng.random() >= rate:
            return None
        own = habits.phone_typed or persona.phone
        if habits.phone_typed:
            persona.mark("phone_digit_missing")
        if not habits.varies_phone:
            return own
        written = phone_variant(rng, own)
        if written != own:
            persona.mark("phone_variant")
        return written

    def _names(self, persona: Persona) -> tuple[str, str]:
        first, last = persona.first, persona.last
        if not (first + last).isascii() and self.rng.random() < RATE["name_variant"]:
            first, last = name_variant(self.rng, first), name_variant(self.rng, last)
            persona.mark("name_variant")
        return first, last

    def _address(self, persona: Persona) -> dict[str, Any] | None:
        if persona.address is None:
            return None
        rng = self.rng
        address = persona.address.as_event()
        if rng.random() >= RATE["address_variant"]:
            return address
        match rng.randint(0, 4):
            case 0:
                address["street"] = street_variant(rng, address["street"])
            case 1:
                address["house_number"] = house_number_variant(rng, address["house_number"])
            case 2:
                address["postcode"] = postcode_variant(address["postcode"])
            case 3:
                address["city"] = city_variant(address["city"])
            case _:
                street = street_variant(rng, address["street"])
                address["street"] = f"{street} {address.pop('house_number')}"
        if address != persona.address.as_event():
            persona.mark("address_variant")
        return address

    def web_cookie(self, persona: Persona, household: Household, habits: Habits) -> str:
        rng = self.rng
        if household.shared_cookie and rng.random() < 0.4:
            persona.mark("household_shared_cookie")
            return household.shared_cookie
        if rng.random() < habits.new_cookie_rate:
            persona.cookies.append(self.ids.cookie())
            return persona.cookies[-1]
        return rng.choice(persona.cookies)

    def app_cookie(self, persona: Persona, habits: Habits) -> str:
        if habits.app_cookie is None:
            habits.app_cookie = self.ids.cookie()
            persona.cookies.append(habits.app_cookie)
            persona.mark("app_user")
        return habits.app_cookie

    def _card(
        self, persona: Persona, household: Household, habits: Habits, channel: str
    ) -> str | None:
        rng = self.rng
        by_channel = {"store": 0.9 if habits.store_card_payer else 0.05, "phone": 0.0}
        paid_by_card = RATE["card_reuse"] if channel in ONLINE else by_channel[channel]
        if rng.random() >= paid_by_card:
            return None
        if channel == "store" and habits.store_card_payer:
            persona.mark("store_card_payer")
        shared = household.shared_card
        if shared and shared not in persona.payment_fingerprints and rng.random() < 0.3:
            persona.mark("household_shared_card")
            return shared
        if rng.random() < 0.08:
            persona.payment_fingerprints.append(self.ids.card())
            card = persona.payment_fingerprints[-1]
        else:
            card = rng.choice(persona.payment_fingerprints)
        if card in habits.used_cards:
            persona.mark("card_reuse")
        else:
            habits.used_cards.append(card)
        return card

    def attribution(self) -> dict[str, str] | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            return None
        if roll < 0.7:
            campaign = rng.choice(CAMPAIGNS)
            return {"campaign": campaign, "utm_source": "google", "utm_medium": "cpc"}
        if roll < 0.85:
            return {
                "affiliate_id": rng.choice(AFFILIATES),
                "utm_source": "affiliate",
                "utm_medium": "affiliate",
                "click_id": f"clk_{rng.getrandbits(48):012x}",
            }
        return {
            "utm_source": rng.choice(("instagram", "facebook", "tiktok")),
            "utm_medium": "social",
        }


#: The affiliate networks' first-order voucher and the shop's own seasonal code.
FIRST_ORDER_COUPON = "FIRST10"
SEASONAL_COUPON = "SUMMER15"


def coupon_of(order_id: str, attribution: dict[str, str] | None) -> str | None:
    """The coupon an order redeemed: a third of affiliate orders use the affiliate's
    first-order voucher (whoever the buyer is, as happens), one order in twenty the
    seasonal code.

    Derived from the order id, not drawn: the shop's other draws stay in step.
    """
    roll = zlib.crc32(order_id.encode()) % 60
    if attribution is not None and "affiliate_id" in attribution and roll < 20:
        return FIRST_ORDER_COUPON
    return SEASONAL_COUPON if roll >= 57 else None
