"""The visitor's own answer in the browser: a shop's page with bestand's widget snippet, in
headless Chromium (Debian's ``chromium``, ``deploy/local/install-chromium.sh``), against the
real lookup API on a real Redis.

A returning customer's cookie gets the page's welcome, a stranger's the first-order offer.
Over plain HTTP: the route answers only for an anonymous id and only the widget's fields,
only to the shop's origins, at most its rate a minute per client; a widget key gets nothing
from ``/v1/lookup``.
"""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import Deployment, Process, make_deployment, process_events, run, wait_for

from bestand.stack import free_port

pytestmark = pytest.mark.integration

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<style>body {{ font: 22px sans-serif; margin: 40px; }} #offer {{ padding: 20px;
 border-radius: 8px; background: #f3f0e8; }}</style></head>
<body><h1>Example shop</h1><p id="offer">…</p>
<script>
document.cookie = "ajs_anonymous_id=" + encodeURIComponent(JSON.stringify("{cookie}")) + "; path=/";
document.addEventListener("bestand:answer", function (e) {{
  var a = e.detail;
  document.getElementById("offer").textContent = a.existing_customer
    ? "Welcome back! 10 % for your loyalty (" + a.lifecycle_stage + ")"
    : "New here? 10 % on your first order";
}});
</script>
<script src="http://127.0.0.1:{api}/v1/widget.js" data-key="{key}"></script>
</body></html>
"""


class _Pages(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def shop(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, str, int, Path]]:
    """The lookup API with a returning customer in Redis, and a web server for the shop's
    pages on another port (another origin)."""
    deployment = make_deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("widget"))
    pages = tmp_path_factory.mktemp("pages")
    page_port = free_port()
    deployment.env |= {
        "BESTAND_WIDGET_ORIGINS": f"http://127.0.0.1:{page_port}",
        "BESTAND_WIDGET_RATE_PER_MINUTE": "30",
    }
    order = {"type": "order_placed", "event_id": "w-1", "order_id": "w-o1",
             "event_time": "2026-11-01T10:00:00Z", "total": "42.00", "currency": "EUR",
             "channel": "web", "anonymous_id": "ck-returning",
             "customer": {"guest": True, "email": "returning@example.com"}}  # fmt: skip
    run(process_events(deployment.settings, deployment.topic("orders"), [order]))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", page_port), lambda *a: _Pages(*a, directory=str(pages))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = Process(["api", "--loglevel", "warning"], deployment.env, deployment.log_dir / "api.log")
    key = next(k for k in deployment.env["BESTAND_API_KEYS"].split(",") if k.endswith(":widget"))
    try:
        port = deployment.settings.api_port
        wait_for(lambda: _get(port, "/health")[0] == 200, timeout=30, what="the API")
        yield deployment, key.rsplit(":", 1)[0], page_port, pages
    finally:
        server.shutdown()
        assert api.stop() in (0, -15), api.log_tail()


def _get(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        body = orjson.loads(raw) if raw and raw[:1] in (b"{", b"[") else {}
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    except OSError:
        return 0, {}, {}
    finally:
        connection.close()


def _chromium(url: str, *extra: str) -> str:
    browser = shutil.which("chromium")
    assert browser, "chromium is not installed: bash deploy/local/install-chromium.sh"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=8000", *extra, url],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    return done.stdout


def test_the_page_welcomes_a_returning_customer_and_offers_a_stranger_the_first_order(
    shop: tuple[Deployment, str, int, Path],
) -> None:
    deployment, key, page_port, pages = shop
    api = deployment.settings.api_port
    for name, cookie in (("returning", "ck-returning"), ("stranger", "ck-never-seen")):
        (pages / f"{name}.html").write_text(PAGE.format(cookie=cookie, api=api, key=key))
    if shots := os.environ.get("BESTAND_WIDGET_SCREENSHOTS"):  # the README's pictures
        for name in ("returning", "stranger"):
            _chromium(f"http://127.0.0.1:{page_port}/{name}.html", "--window-size=760,260",
                      f"--screenshot={Path(shots).resolve() / f'widget-{name}.png'}")  # fmt: skip
    returning = _chromium(f"http://127.0.0.1:{page_port}/returning.html", "--dump-dom")
    assert "Welcome back! 10 % for your loyalty (first_time)" in returning, returning[-600:]
    assert 'data-bestand-existing-customer="yes"' in returning
    stranger = _chromium(f"http://127.0.0.1:{page_port}/stranger.html", "--dump-dom")
    assert "New here? 10 % on your first order" in stranger, stranger[-600:]
    assert 'data-bestand-existing-customer="no"' in stranger


def test_the_widget_route_answers_little_to_few(shop: tuple[Deployment, str, int, Path]) -> None:
    deployment, key, page_port, _ = shop
    api = deployment.settings.api_port
    origin = {"Origin": f"http://127.0.0.1:{page_port}"}
    query = urllib.parse.urlencode({"anonymous_id": "ck-returning", "key": key})
    status, answer, headers = _get(api, f"/v1/widget?{query}", origin)
    assert status == 200
    assert answer["existing_customer"] is True
    shown = {"known", "existing_customer", "lifecycle_stage", "new_customer_offer_eligible",
             "loyalty_offers", "interests"}  # fmt: skip
    assert set(answer) <= shown
    assert headers["access-control-allow-origin"] == origin["Origin"]
    other = {"Origin": "https://elsewhere.example"}
    assert _get(api, f"/v1/widget?{query}", other)[0] == 403
    by_email = urllib.parse.urlencode({"email": "returning@example.com", "key": key})
    assert _get(api, f"/v1/widget?{by_email}", origin)[0] == 400
    assert _get(api, "/v1/widget?anonymous_id=ck-returning&key=nope", origin)[0] == 401
    bearer = {"Authorization": f"Bearer {key}"}
    assert _get(api, "/v1/lookup?email=returning%40example.com", bearer)[0] == 403
    snippet = http.client.HTTPConnection("127.0.0.1", api, timeout=10)
    snippet.request("GET", "/v1/widget.js")
    response = snippet.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("application/javascript")
    assert b"ajs_anonymous_id" in response.read()
    statuses = [_get(api, f"/v1/widget?{query}", origin)[0] for _ in range(40)]
    assert 429 in statuses, statuses  # 30 a minute per client address
    limited = _get(api, f"/v1/widget?{query}", origin)
    assert limited[0] == 429
    assert int(limited[2]["retry-after"]) >= 1
