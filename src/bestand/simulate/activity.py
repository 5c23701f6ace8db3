"""What people do in the shop: visits, checkouts, store purchases, newsletters, consent.

Each kind of person (see :mod:`bestand.simulate.scenarios`) has a routine here: when they
come, on which channel they buy, what follows an order (account, newsletter, cancellation,
return, a call to customer service). What each order shows of them is decided in
:mod:`bestand.simulate.checkout`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from bestand.simulate import events as ev
from bestand.simulate.checkout import ONLINE, Checkout, CheckoutChoices, Habits, coupon_of
from bestand.simulate.events import EventLog
from bestand.simulate.ids import IdFactory
from bestand.simulate.names import (
    DUMMY_EMAILS,
    NEWSLETTERS,
    PRODUCTS,
    SHOP_DUMMY_EMAILS,
    SHOP_URL,
    STORES,
    product_category,
    product_price,
)
from bestand.simulate.people import Household, Persona
from bestand.simulate.population import RATE, pick
from bestand.simulate.scenarios import SCENARIO_BY_KIND
from bestand.simulate.variants import phone_variant

#: How far back the shop's history goes.
HISTORY_DAYS = 400
_CHANNELS: dict[str, tuple[tuple[str, float], ...]] = {
    "new_customer": (("web", 0.6), ("app", 0.15), ("store", 0.2), ("phone", 0.05)),
    "registered": (("web", 0.65), ("app", 0.3), ("store", 0.05)),
    "loyal_guest": (("web", 0.75), ("app", 0.25)),
    "typo_guest": (("web", 0.75), ("app", 0.25)),
    "omnichannel_guest": (("web", 0.25), ("app", 0.05), ("store", 0.5), ("phone", 0.2)),
    "walk_in": (("store", 0.92), ("phone", 0.08)),
}
_SOURCES = {"web": "shop-web", "app": "shop-app", "phone": "callcenter"}


class Activity:
    """Turns personas into events on an :class:`EventLog`."""

    def __init__(
        self,
        rng: random.Random,
        now: datetime,
        ids: IdFactory,
        log: EventLog,
        households: dict[str, Household],
        e_receipts: float = 0.0,
        receipts_rng: random.Random | None = None,
        typing_rng: random.Random | None = None,
    ) -> None:
        self.rng = rng
        self.now = now
        self.ids = ids
        self.log = log
        self.households = households
        self.choices = CheckoutChoices(rng, ids, e_receipts, receipts_rng, typing_rng)
        step = HISTORY_DAYS / len(NEWSLETTERS)
        self.newsletter_dates = [
            (name, now - timedelta(days=HISTORY_DAYS - step * (i + 0.5)))
            for i, name in enumerate(NEWSLETTERS)
        ]
        self._routines: dict[str, Callable[[Persona, Household, Habits], None]] = {
            "browser": self._browse_only,
            "new_customer": self._buy,
            "registered": self._buy,
            "loyal_guest": self._buy,
            "omnichannel_guest": self._buy,
            "typo_guest": self._buy,
            "walk_in": self._buy,
        }

    # -- time -------------------------------------------------------------------------------

    def _window(self) -> tuple[datetime, datetime]:
        """When this person is active: from some day in the history until now."""
        start = self.now - timedelta(seconds=self.rng.randint(20 * 86400, HISTORY_DAYS * 86400))
        return start, self.now - timedelta(hours=1)

    def _moments(self, count: int, start: datetime, end: datetime) -> list[datetime]:
        span = (end - start).total_seconds()
        return sorted(
            start + timedelta(seconds=int(self.rng.random() * span)) for _ in range(count)
        )

    def _later(self, at: datetime, low: timedelta, high: timedelta) -> datetime | None:
        """A moment between ``low`` and ``high`` after ``at``, or None if that is the future."""
        span = (high - low).total_seconds()
        moment = at + low + timedelta(seconds=int(self.rng.random() * span))
        return moment if moment < self.now else None

    # -- routines ---------------------------------------------------------------------------

    def live(self, persona: Persona) -> None:
        """Everything ``persona`` does during the shop's history."""
        rng = self.rng
        habits = Habits(
            gives_phone=rng.random() < 0.6,
            fake_phone=rng.random() < RATE["fake_phone"],
            varies_email=rng.random() < RATE["email_variant"],
            varies_phone=rng.random() < RATE["phone_variant"],
            new_cookie_rate=0.4 if persona.kind in ("loyal_guest", "typo_guest") else 0.15,
            store_card_payer=rng.random() < RATE["store_card_payer"],
            store_phone_giver=rng.random() < (0.45 if persona.kind == "walk_in" else 0.7),
        )
        choices, typing = self.choices, self.choices.typing
        run_phone, short_phone, spaces = (typing.random() for _ in range(3))
        if run_phone < RATE["phone_digit_run"]:
            choices.digit_run_phone(persona)
        if short_phone < RATE["phone_digit_missing"]:
            habits.phone_typed = choices.digit_missing(persona)
        habits.spaces_email = spaces < RATE["email_stray_space"]
        self._routines[persona.kind](persona, self.households[persona.household], habits)

    def _browse_only(self, persona: Persona, household: Household, habits: Habits) -> None:
        start, end = self._window()
        moments = self._moments(self.rng.randint(1, 3), start, end)
        for at in moments:
            self._browse(persona, household, habits, at)
        if self.rng.random() < RATE["newsletter"] / 3:
            cookie = persona.cookies[0]
            self.log.add(
                persona.key,
                moments[0],
                ev.identify("shop-web", email=persona.email, anonymous_id=cookie),
            )
            self._newsletter(persona, persona.email, moments[0], customer_id=None)

    def _buy(self, persona: Persona, household: Household, habits: Habits) -> None:
        rng = self.rng
        low, high = SCENARIO_BY_KIND[persona.kind].orders
        count = rng.randint(low, high)
        start, end = self._window()
        moments = self._moments(count, start, end)
        channels = [pick(rng, _CHANNELS[persona.kind]) for _ in moments]
        if persona.kind == "omnichannel_guest":
            channels[0] = "web"
        if not persona.devices:
            channels = ["web" if channel == "app" else channel for channel in channels]
        if persona.kind == "typo_guest":
            habits.typo_order = rng.randint(1, count - 1)
        if persona.kind == "registered" and rng.random() < RATE["registered_guest_checkout"]:
            habits.guest_checkout_order = rng.randint(1, count - 1)
            channels[habits.guest_checkout_order] = "web"
        if persona.kind != "walk_in" or rng.random() < 0.2:
            for at in self._moments(rng.randint(0, 1), start, end):
                self._browse(persona, household, habits, at)
        if persona.loyalty_card and moments:
            self._loyalty_signup(persona, household, habits, persona.loyalty_card, moments[0])
        order_ids: list[str] = []
        for number, (at, channel) in enumerate(zip(moments, channels, strict=True)):
            checkout = self.choices.checkout(persona, household, habits, number, channel)
            order_ids.append(self.place(persona, at, checkout, habits=habits))
            if number == 0:
                self._after_first_order(persona, household, habits, at, checkout)
        if order_ids and rng.random() < 0.04:
            self._contact(persona, habits, moments[-1])

    # -- what an order shows ----------------------------------------------------------------

    # -- events -----------------------------------------------------------------------------

    def _browse(self, persona: Persona, household: Household, habits: Habits, at: datetime) -> None:
        app = bool(persona.devices) and self.rng.random() < 0.3
        cookie = (
            self.choices.app_cookie(persona, habits)
            if app
            else self.choices.web_cookie(persona, household, habits)
        )
        self.visit(
            persona,
            at,
            cookie,
            device=persona.devices[0] if app else None,
            customer_id=self._logged_in(persona),
            habits=habits,
            attribution=self.choices.attribution(),
        )

    def _logged_in(self, persona: Persona) -> str | None:
        """Account holders are logged in on most visits."""
        if persona.customer_id is None:
            return None
        return persona.customer_id if self.rng.random() < 0.8 else None

    def visit(
        self,
        persona: Persona,
        at: datetime,
        cookie: str,
        *,
        device: str | None = None,
        customer_id: str | None = None,
        habits: Habits | None = None,
        attribution: dict[str, str] | None = None,
        cart: bool = False,
        steps: int | None = None,
    ) -> None:
        """A session of 1–3 clicks on one cookie; ``cart`` ends it with an add-to-cart.

        With ``customer_id`` the visitor is logged in; the first login on a cookie is
        announced with an ``identify`` event (when ``habits`` tracks which ones were).
        """
        rng = self.rng
        steps = steps or rng.randint(1, 3)
        if customer_id and habits is not None:
            self._login(customer_id, persona, habits, at, cookie, device)
        source = "app-tracking" if device else "web-tracking"
        for step in range(steps):
            product = rng.choice(PRODUCTS)
            if cart and step == steps - 1:
                kind = "add_to_cart"
            elif step == 0 and not cart:
                kind = "page_view"
            else:
                kind = "product_view"
            url = f"{SHOP_URL}/p/{product}" if kind != "page_view" else f"{SHOP_URL}/"
            self.log.add(
                persona.key,
                at + timedelta(seconds=40 * step),
                ev.click(
                    kind,
                    cookie=cookie,
                    url=url,
                    source=source,
                    customer_id=customer_id,
                    device_id=device,
                    product_id=product,
                    category=product_category(product),
                    price=product_price(product),
                    quantity=rng.choice((1, 1, 1, 2)),
                    attribution=attribution if step == 0 else None,
                ),
            )

    def _login(
        self,
        customer_id: str,
        persona: Persona,
        habits: Habits,
        at: datetime,
        cookie: str,
        device: str | None,
    ) -> None:
        """First login on a browser or app install: the shop says who this cookie is."""
        if cookie in habits.identified:
            return
        habits.identified.add(cookie)
        source = "shop-app" if device else "shop-web"
        event = ev.identify(source, customer_id=customer_id, anonymous_id=cookie, device_id=device)
        self.log.add(persona.key, at, event)

    def place(
        self,
        persona: Persona,
        at: datetime,
        checkout: Checkout,
        *,
        habits: Habits | None = None,
        aftermath: bool = True,
    ) -> str:
        """Emit an order (after its checkout session online), maybe its cancellation or return."""
        rng = self.rng
        order_id = self.ids.order_id()
        if checkout.channel in ONLINE and checkout.cookie:
            steps = rng.randint(1, 2)
            self.visit(
                persona,
                at - timedelta(minutes=rng.randint(3, 30)),
                checkout.cookie,
                device=checkout.device,
                customer_id=None if checkout.guest else checkout.customer_id,
                habits=habits,
                attribution=checkout.attribution,
                cart=True,
                steps=steps,
            )
        customer = {
            "customer_id": checkout.customer_id,
            "guest": checkout.guest,
            "email": checkout.email,
            "phone": checkout.phone,
            "first_name": checkout.first_name,
            "last_name": checkout.last_name,
            "address": checkout.address,
            "loyalty_card": checkout.loyalty_card,
        }
        country = persona.country
        total = f"{rng.uniform(9, 320):.2f}"
        currency = "GBP" if country == "GB" else "EUR"
        source = _SOURCES.get(checkout.channel) or rng.choice(STORES)
        self.log.add(
            persona.key,
            at,
            ev.order_placed(
                order_id=order_id,
                total=total,
                currency=currency,
                channel=checkout.channel,
                source=source,
                customer=customer,
                items=rng.randint(1, 5),
                cookie=checkout.cookie,
                device_id=checkout.device,
                payment_fingerprint=checkout.card,
                attribution=checkout.attribution,
                coupon=coupon_of(order_id, checkout.attribution),
            ),
        )
        if aftermath:
            self._aftermath(persona, at, order_id, checkout.channel, total, currency)
        return order_id

    def _aftermath(
        self, persona: Persona, at: datetime, order_id: str, channel: str, total: str, currency: str
    ) -> None:
        rng = self.rng
        if rng.random() < 0.04:
            moment = self._later(at, timedelta(hours=1), timedelta(days=2))
            if moment:
                reason = rng.choice(("customer_request", "payment_failed", "out_of_stock", None))
                self.log.add(persona.key, moment, ev.order_cancelled(order_id, reason))
                return
        if channel in ONLINE and rng.random() < 0.12:
            moment = self._later(at, timedelta(days=5), timedelta(days=30))
            if moment:
                amount = None
                if rng.random() < 0.4:
                    amount = f"{float(total) * rng.uniform(0.2, 0.8):.2f}"
                self.log.add(persona.key, moment, ev.order_returned(order_id, amount, currency))
                return
        if rng.random() < 0.03:
            moment = self._later(at, timedelta(days=1), timedelta(days=40))
            if moment:
                reason = rng.choice(("goodwill", "price_adjustment", "chargeback"))
                amount = None if reason == "chargeback" else f"{float(total) * 0.1:.2f}"
                self.log.add(
                    persona.key, moment, ev.order_refunded(order_id, amount, currency, reason)
                )

    def _loyalty_signup(
        self,
        persona: Persona,
        household: Household,
        habits: Habits,
        card: str,
        first_order: datetime,
    ) -> None:
        """The card is issued against a sign-up form, just before the holder's first purchase.

        A loyalty programme knows who holds each card: the form takes the e-mail the person
        shops with (the family one, if they order with it) and their phone, if they give one.
        Nothing is drawn here, so the rest of the shop does not depend on it.
        """
        shared = household.shared_email if persona.key in household.email_sharers else None
        phone = persona.phone if habits.gives_phone and not habits.fake_phone else None
        at = first_order - timedelta(minutes=5)
        event = ev.identify(
            "loyalty-signup",
            loyalty_card=card,
            email=shared or persona.email,
            phone=phone,
        )
        self.log.add(persona.key, at, event)
        persona.mark("loyalty_card")

    def _after_first_order(
        self,
        persona: Persona,
        household: Household,
        habits: Habits,
        at: datetime,
        checkout: Checkout,
    ) -> None:
        """Account creation and newsletter sign-up happen around the first order."""
        if persona.customer_id and not checkout.guest:
            self.log.add(
                persona.key,
                at,
                ev.identify(
                    _SOURCES.get(checkout.channel, "pos"),
                    customer_id=persona.customer_id,
                    email=checkout.email or persona.email,
                    anonymous_id=checkout.cookie,
                ),
            )
        email = checkout.email
        real = email is not None and email not in DUMMY_EMAILS and email not in SHOP_DUMMY_EMAILS
        if email and real and self.rng.random() < RATE["newsletter"]:
            self._newsletter(persona, email.strip().lower(), at, customer_id=persona.customer_id)
        elif self.rng.random() < 0.03 and email and real:
            consent = {"ads": False, "personalization": self.rng.random() < 0.5}
            moment = self._later(at, timedelta(days=1), timedelta(days=90))
            if moment:
                event = ev.consent_changed("preference-center", consent, email=email)
                self.log.add(persona.key, moment, event)

    def _newsletter(
        self, persona: Persona, email: str, signed_up: datetime, *, customer_id: str | None
    ) -> None:
        """Opt-in, then some newsletters: sent, delivered, opened, clicked, unsubscribed."""
        rng = self.rng
        persona.mark("newsletter")
        optin = ev.consent_changed(
            "shop-web", {"email": True}, email=email, customer_id=customer_id
        )
        self.log.add(persona.key, signed_up, optin)
        for campaign, sent in self.newsletter_dates:
            if sent <= signed_up or rng.random() >= 0.3:
                continue
            message_id = self.ids.message_id()
            self.log.add(
                persona.key,
                sent,
                ev.email_event("email_sent", email, campaign=campaign, message_id=message_id),
            )
            later = sent + timedelta(minutes=rng.randint(1, 10))
            if rng.random() < 0.02:
                bounce = ev.email_event(
                    "email_bounced", email, campaign=campaign, bounce_type="soft"
                )
                self.log.add(persona.key, later, bounce)
                continue
            self.log.add(
                persona.key,
                later,
                ev.email_event("email_delivered", email, campaign=campaign, message_id=message_id),
            )
            if rng.random() >= 0.4:
                continue
            opened = sent + timedelta(hours=rng.uniform(0.2, 72))
            self.log.add(
                persona.key,
                opened,
                ev.email_event("email_opened", email, campaign=campaign, message_id=message_id),
            )
            if rng.random() < 0.25:
                url = f"{SHOP_URL}/sale?utm_source=newsletter&utm_campaign={campaign}"
                clicked = opened + timedelta(seconds=rng.randint(5, 600))
                self.log.add(
                    persona.key,
                    clicked,
                    ev.email_event(
                        "email_clicked", email, campaign=campaign, message_id=message_id, url=url
                    ),
                )
                attribution = {
                    "campaign": campaign,
                    "utm_source": "newsletter",
                    "utm_medium": "email",
                }
                self.visit(
                    persona,
                    clicked + timedelta(seconds=3),
                    rng.choice(persona.cookies),
                    customer_id=self._logged_in(persona),
                    attribution=attribution,
                )
            if rng.random() < 0.05:
                gone = opened + timedelta(minutes=rng.randint(1, 30))
                self.log.add(
                    persona.key,
                    gone,
                    ev.email_event("email_unsubscribed", email, campaign=campaign),
                )
                self.log.add(
                    persona.key, gone, ev.consent_changed("esp", {"email": False}, email=email)
                )
                return

    def _contact(self, persona: Persona, habits: Habits, at: datetime) -> None:
        """A call or e-mail to customer service about an order."""
        rng = self.rng
        topic = rng.choice(("return", "delivery", "advice", "invoice"))
        moment = self._later(at, timedelta(hours=2), timedelta(days=14))
        if moment is None:
            return
        if rng.random() < 0.6:
            event = ev.contact(
                "phone",
                topic,
                phone=phone_variant(rng, persona.phone),
                customer_id=persona.customer_id,
            )
        else:
            event = ev.contact(
                "email",
                topic,
                email=habits.first_email or persona.email,
                customer_id=persona.customer_id,
            )
        self.log.add(persona.key, moment, event)
