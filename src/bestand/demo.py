"""``bestand demo``: the whole system on the local stack with a simulated shop.

Starts Kafka and Redis (if needed), one worker and the lookup API as child processes, feeds
the simulated shop, waits until the worker has caught up, then shows lookups over HTTP.
Ctrl-C stops what the demo started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from bestand.ingest import EventProducer
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import Keys, connect
from bestand.stream.topics import all_topics, consumer_lag, delete_topics, ensure_topics

#: The demo's own namespace: topics, consumer group and Redis keys that it may reset.
DEMO_NAMESPACE = "bestand-demo"
DEMO_REDIS_PREFIX = "demo"


_TOPIC_KINDS = ("clickstream", "orders", "email", "customer", "resolved", "dlq")


def demo_settings(settings: Settings) -> Settings:
    """The user's settings moved into the demo's namespace."""
    update: dict[str, str] = {"app_id": DEMO_NAMESPACE, "redis_prefix": DEMO_REDIS_PREFIX}
    update |= {f"topic_{kind}": f"{DEMO_NAMESPACE}.{kind}" for kind in _TOPIC_KINDS}
    return settings.model_copy(update=update)


def demo_environment(settings: Settings) -> dict[str, str]:
    """Environment that gives the demo's child processes the demo's namespace."""
    names = ["app_id", "redis_prefix", "kafka_bootstrap", "redis_url"]
    names += [f"topic_{kind}" for kind in _TOPIC_KINDS]
    return {f"BESTAND_{name.upper()}": str(getattr(settings, name)) for name in names}


async def reset_namespace(settings: Settings) -> None:
    """Start from nothing: delete the demo's topics and Redis keys (and nothing else)."""
    await delete_topics(settings, all_topics(settings))
    client = connect(settings.redis_url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=Keys(settings.redis_prefix).pattern(), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()
    await ensure_topics(settings)


class DemoError(RuntimeError):
    """Something the demo needs did not come up; the message says where to look."""


def _spawn(args: list[str], log_file: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bestand", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop within 30 s; killing it")
        process.kill()
        process.wait()


def _get(url: str, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


def _wait_ready(base: str, api: subprocess.Popen[bytes], log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise DemoError(f"the API exited with code {api.returncode}; see {log_file}")
        try:
            status, _ = _get(f"{base}/ready", "")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise DemoError(f"the API did not become ready in {timeout:.0f} s; see {log_file}")


async def _wait_caught_up(
    settings: Settings, worker: subprocess.Popen[bytes], log_file: Path, total: int
) -> None:
    topics = [*settings.input_topics, settings.topic_resolved]
    started = time.monotonic()
    last_print = 0.0
    while True:
        if worker.poll() is not None:
            raise DemoError(f"the worker exited with code {worker.returncode}; see {log_file}")
        try:
            lag = await consumer_lag(settings, settings.app_id, topics)
        except KafkaError as exc:  # e.g. the group coordinator is still being elected
            print(f"  waiting for Kafka ({type(exc).__name__})")
            await asyncio.sleep(1)
            continue
        pending_input = sum(lag[t] for t in settings.input_topics)
        pending = pending_input + lag[settings.topic_resolved]
        if pending == 0:
            print(f"  worker caught up: {total} events in {time.monotonic() - started:.1f} s")
            return
        if time.monotonic() - last_print > 2:
            done = max(total - pending_input, 0)
            print(f"  processing … {done}/{total} events read, {pending} messages pending")
            last_print = time.monotonic()
        if time.monotonic() - started > 600:
            raise DemoError(f"the worker did not catch up in 10 minutes; see {log_file}")
        await asyncio.sleep(0.5)


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
    settings = demo_settings(settings)
    env = demo_environment(settings)
    asyncio.run(reset_namespace(settings))
    print(f"  fresh demo namespace: topics {DEMO_NAMESPACE}.*, Redis keys {DEMO_REDIS_PREFIX}:*")
    print("2/5  worker and lookup API")
    worker = _spawn(["worker", "--loglevel", "warning"], logs / "worker.log", env)
    api = _spawn(["api", "--loglevel", "warning"], logs / "api.log", env)
    base = f"http://{settings.api_host}:{settings.api_port}"
    key = settings.api_keys[0].get_secret_value()
    try:
        _wait_ready(base, api, logs / "api.log", timeout=60)
        print(f"  API ready on {base} (logs in {logs})")
        shop = simulate(persons=persons, seed=seed)
        print(
            f"3/5  feeding the simulated shop: {len(shop.events)} events of "
            f"{len(shop.personas)} people"
        )

        async def feed() -> None:
            async with EventProducer(settings) as producer:
                await producer.send_all(shop.events)
            await _wait_caught_up(settings, worker, logs / "worker.log", len(shop.events))

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
            {"phone": "+49 151 12345678"},
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
            while worker.poll() is None and api.poll() is None:
                time.sleep(0.5)
            print("a child process exited; stopping the demo")
    except KeyboardInterrupt:
        print("\nstopping …")
        return 0
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    else:
        return 0 if same else 1
    finally:
        _stop(worker, "worker")
        _stop(api, "API")
        print(
            "worker and API stopped; Kafka and Redis keep running (`bestand stack down` stops them)"
        )
