"""``bestand demo``: the whole system on the local stack with a simulated shop.

Starts Kafka and Redis (if needed), one worker and the lookup API as child processes, feeds
the simulated shop, waits until the worker has caught up, then shows lookups over HTTP.
Ctrl-C stops what the demo started.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from bestand.children import Child, ChildFailed, wait_caught_up
from bestand.ingest import EventProducer
from bestand.namespace import NamespaceBusy, environment, namespaced, reset
from bestand.settings import Settings
from bestand.simulate import simulate

#: The demo's own namespace: topics, consumer group and Redis keys that it may reset.
DEMO_NAMESPACE = "bestand-demo"
DEMO_REDIS_PREFIX = "demo"


def _get(url: str, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


def _wait_ready(base: str, api: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        api.check()
        try:
            status, _ = _get(f"{base}/ready", "")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise ChildFailed(f"the API did not become ready in {timeout:.0f} s; see {api.log_file}")


def _show(base: str, key: str, label: str, params: dict[str, str]) -> dict[str, Any]:
    query = urllib.parse.urlencode(params)
    status, answer = _get(f"{base}/v1/lookup?{query}", key)
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    print(f"\n  {label}\n  GET /v1/lookup?{query}   ({shown})  → {status}")
    for field in (
        "known",
        "person_id",
        "existing_customer",
        "orders_count",
        "first_order_at",
        "last_order_at",
        "lifecycle_stage",
    ):
        print(f"      {field:18} {answer.get(field)}")
    return answer


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, *, persons: int, seed: int, wait: bool) -> int:
    """Run the demo; return the process exit code."""
    # SIGTERM (a supervisor, `kill`) stops the demo the way Ctrl-C does: children included.
    signal.signal(signal.SIGTERM, _interrupt)
    from bestand.stack import LocalStack, StackError

    logs = settings.stack_dir / "logs"
    print("1/5  local stack (Kafka in KRaft mode, Redis)")
    stack = LocalStack.from_settings(settings)
    try:
        stack.up()
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    settings = namespaced(settings, DEMO_NAMESPACE, DEMO_REDIS_PREFIX)
    env = environment(settings)
    try:
        asyncio.run(reset(settings))
    except NamespaceBusy as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(f"  fresh demo namespace: topics {DEMO_NAMESPACE}.*, Redis keys {DEMO_REDIS_PREFIX}:*")
    print("2/5  worker and lookup API")
    worker = Child.start("worker", ["worker", "--loglevel", "warning"], logs / "worker.log", env)
    api = Child.start("API", ["api", "--loglevel", "warning"], logs / "api.log", env)
    base = f"http://{settings.api_host}:{settings.api_port}"
    key = settings.api_key()
    try:
        _wait_ready(base, api, timeout=60)
        print(f"  API ready on {base} (logs in {logs})")
        shop = simulate(persons=persons, seed=seed)
        print(
            f"3/5  feeding the simulated shop: {len(shop.events)} events of "
            f"{len(shop.personas)} people"
        )

        async def feed() -> None:
            async with EventProducer(settings) as producer:
                await producer.send_all(shop.events)
            took = await wait_caught_up(settings, [worker], len(shop.events))
            print(f"  worker caught up: {len(shop.events)} events in {took:.1f} s")

        asyncio.run(feed())
        print("4/5  lookups")
        first = _show(
            base,
            key,
            "Jana, a loyal guest, by the e-mail of her first order:",
            {"email": "Jana.Schmidt@gmail.com"},
        )
        second = _show(
            base,
            key,
            "… by the spelling she used the second time:",
            {"email": " JANASCHMIDT+angebot@GMAIL.com "},
        )
        _show(
            base,
            key,
            "… by the phone of her second order, written another way:",
            {"phone": "+49 151 23847561"},
        )
        _show(
            base, key, "An address the shop has never seen:", {"email": "new.visitor@example.org"}
        )
        same = first.get("person_id") == second.get("person_id") and first.get("known")
        print(
            f"\n  one person behind both spellings: {'yes' if same else 'NO'}; "
            f"existing customer with {second.get('orders_count')} orders"
        )
        print("5/5  try it yourself:")
        url = f"{base}/v1/lookup?email=jana.schmidt@gmail.com"
        print(f"  curl -H 'Authorization: Bearer {key}' '{url}'")
        hint = "bestand lookup --email JanaSchmidt@gmail.com"
        print(f"  BESTAND_REDIS_PREFIX={DEMO_REDIS_PREFIX} {hint}")
        if wait:
            print("\nThe worker and API keep running; Ctrl-C stops them.")
            while worker.process.poll() is None and api.process.poll() is None:
                time.sleep(0.5)
            print("a child process exited; stopping the demo")
    except KeyboardInterrupt:
        print("\nstopping …")
        return 0
    except ChildFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    else:
        return 0 if same else 1
    finally:
        worker.stop()
        api.stop()
        print(
            "worker and API stopped; Kafka and Redis keep running (`bestand stack down` stops them)"
        )
