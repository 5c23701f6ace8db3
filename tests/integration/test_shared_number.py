"""A number of a memorable shape: one customer's own links; typed by many, it is flagged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import make_deployment, process_events, run

from bestand.api import create_api
from bestand.identity import IdentityKeyer, IdKind
from bestand.store import Keys, connect

pytestmark = pytest.mark.integration

RUN = "0171 2345678"  # a valid number whose subscriber part is a digit run


def _order(n: int, email: str, first: str, last: str) -> dict[str, Any]:
    return {
        "type": "order_placed",
        "event_id": f"sn-{n}",
        "event_time": f"2026-11-{n + 1:02d}T10:00:00Z",
        "order_id": f"o-sn-{n}",
        "total": "19.00",
        "currency": "EUR",
        "channel": "web",
        "customer": {
            "guest": True,
            "email": email,
            "phone": RUN,
            "first_name": first,
            "last_name": last,
        },
    }


@pytest.mark.parametrize("resolve", ["native", "python"])
def test_one_customers_run_links_and_many_typing_it_get_it_flagged(
    redis_url: str, tmp_path: Path, resolve: str
) -> None:
    deployment = make_deployment("127.0.0.1:1", redis_url, tmp_path)
    settings = deployment.settings.model_copy(update={"resolve": resolve})
    # Jana gives her number on two orders, once with another e-mail: the number joins them.
    jana = [
        _order(1, "jana@example.org", "Jana", "Berg"),
        _order(2, "jana.berg@work.example", "Jana", "Berg"),
    ]
    # Then strangers type the same number as a placeholder, each with their own name.
    strangers = [
        _order(3, "otto@example.org", "Otto", "Lang"),
        _order(4, "ute@example.org", "Ute", "Kern"),
        _order(5, "ali@example.org", "Ali", "Demir"),
    ]
    token = IdentityKeyer(settings.hmac_secret.get_secret_value().encode(), "DE").key(
        IdKind.PHONE, RUN
    )

    async def go(events: list[dict[str, Any]], start: int) -> dict[str, Any]:
        await process_events(settings, settings.topic_orders, events, start)
        client = connect(settings.redis_url)
        api = create_api(settings)
        try:
            lookup = api.service.lookup
            return {
                "jana": await lookup("email", "jana@example.org"),
                "work": await lookup("email", "jana.berg@work.example"),
                "otto": await lookup("email", "otto@example.org"),
                "phone": await lookup("phone", RUN),
                "junk": await client.exists(Keys(settings.redis_prefix).junk(token.token)),
            }
        finally:
            await api.close()
            await client.aclose()

    first = run(go(jana, 0))
    assert first["jana"]["person_id"] == first["work"]["person_id"]
    assert first["jana"]["orders_count"] == 2
    assert first["phone"]["person_id"] == first["jana"]["person_id"]
    assert first["junk"] == 0
    after = run(go(strangers, 10))
    # Different names: nobody is joined to Jana; past its limit of three persons the number is
    # junk and answers for no one, while Jana keeps her orders.
    assert after["otto"]["person_id"] not in (None, after["jana"]["person_id"])
    assert after["jana"]["orders_count"] == 2
    assert after["junk"] == 1
    assert after["phone"]["known"] is False
