"""The visitor's own answer in the browser: ``GET /v1/widget`` and the snippet ``/v1/widget.js``.

A shop's page includes the snippet with a *public* key of scope ``widget``::

    <script src="https://bestand.shop.example/v1/widget.js" data-key="pub-..."></script>

The snippet reads the analytics.js anonymous id (the ``ajs_anonymous_id`` cookie, else
local storage), asks ``/v1/widget`` about that id alone, sets
``data-bestand-existing-customer="yes|no"`` on ``<html>``, keeps the answer in
``window.bestand`` and fires a ``bestand:answer`` event, so the page shows a returning
customer's welcome or a stranger's first-order offer. The route answers only for an
anonymous id, only the fields a widget may show (known, existing customer, lifecycle stage,
offer eligibility and offers, interests: no person id, no amounts), only to the shop's
origins (``BESTAND_WIDGET_ORIGINS``), and at most ``BESTAND_WIDGET_RATE_PER_MINUTE`` times a
minute per client address (429 beyond).
"""

from __future__ import annotations

import time
from collections import OrderedDict

#: Clients whose request budget is remembered (the least recently seen go first).
_CLIENTS = 100_000

SNIPPET = b"""(function () {
  "use strict";
  var script = document.currentScript;
  var key = script && script.getAttribute("data-key");
  var api = script ? new URL(script.src).origin : "";
  function cookie(name) {
    var found = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return found ? decodeURIComponent(found[1]) : null;
  }
  function stored(name) {
    try { return window.localStorage.getItem(name); } catch (e) { return null; }
  }
  function tell(answer) {
    window.bestand = answer;
    document.documentElement.setAttribute(
      "data-bestand-existing-customer", answer.existing_customer ? "yes" : "no");
    document.dispatchEvent(new CustomEvent("bestand:answer", { detail: answer }));
  }
  var raw = cookie("ajs_anonymous_id") || stored("ajs_anonymous_id");
  if (!raw || !key) { tell({ known: false }); return; }
  var id = raw.replace(/^"|"$/g, "");
  fetch(api + "/v1/widget?anonymous_id=" + encodeURIComponent(id) +
        "&key=" + encodeURIComponent(key), { credentials: "omit" })
    .then(function (r) { return r.ok ? r.json() : { known: false }; })
    .catch(function () { return { known: false }; })
    .then(tell);
})();
"""


class RateLimit:
    """A token bucket per client address: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, clients: int = _CLIENTS) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._clients = clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may go, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._clients:
            self._buckets.popitem(last=False)
        return wait
