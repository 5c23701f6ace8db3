"""``bestand collector``: Segment's HTTP tracking API in front of bestand's input topics.

A shop points its analytics.js or Segment library at the collector by changing the host and
the write key; nothing else changes. Routes: ``POST /v1/track``, ``/v1/identify``,
``/v1/page`` (and ``screen``, ``group``, ``alias``, which bestand skips), ``/v1/batch``
(``/v1/import``), and analytics.js's short forms (``/v1/t``, ``/v1/i``, ``/v1/p``, ``/v1/b``
...). The write key comes as the HTTP Basic user name or as ``writeKey`` in the body, as
Segment takes it. Limits are Segment's: 32 KB a call, 500 KB a batch.

Answers: 200 once Kafka acknowledged every event of the request (``acks=all``); 400 with
the reason of every call that makes no event (a batch's other calls are forwarded all the
same, and the answer lists the refused ones by index); 401 for a missing or unknown write
key; 413 for a body or call beyond the limits; 503 with ``Retry-After`` when Kafka did not
take the events in time. Nothing is acknowledged that is not in Kafka.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from bestand.asgi import (
    INTERNAL_ERROR,
    JSON,
    METRICS,
    Headers,
    HttpError,
    Receive,
    Scope,
    Send,
    header,
    lifespan,
    read_body,
    respond,
)
from bestand.collector.forward import Forwarder, KafkaUnavailable, Record
from bestand.collector.mapping import Mapped, Refused, Skipped
from bestand.collector.models import CollectorAnswer, CollectorRefusal, RefusedCall
from bestand.collector.segment import from_segment
from bestand.collector.sendgrid import from_sendgrid, public_key, verified
from bestand.collector.shopify import from_shopify, signed
from bestand.ingest.producer import key_for, topic_for
from bestand.ops.metrics import CollectorMetrics
from bestand.settings import Settings

log = logging.getLogger(__name__)

#: Path -> the call type it takes (None: a batch of calls of any type).
_CALLS = ("track", "identify", "page", "screen", "group", "alias")
ROUTES: dict[str, str | None] = {
    **{f"/v1/{name}": name for name in _CALLS},
    **{f"/v1/{name[0]}": name for name in _CALLS},  # analytics.js's short forms
    "/v1/batch": None,
    "/v1/b": None,
    "/v1/import": None,
}
#: Where Shopify posts its order webhooks, and SendGrid its Event Webhook.
SHOPIFY_ROUTE = "/v1/webhooks/shopify"
SENDGRID_ROUTE = "/v1/webhooks/sendgrid"
#: Call types counted by name in the metrics (anything else is "other").
CALL_TYPES = frozenset(_CALLS)
#: How long a client should wait before sending again when Kafka is away.
RETRY_AFTER_SECONDS = 5
#: Browsers post cross-origin (analytics.js sends text/plain to avoid a preflight).
CORS: Headers = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"authorization, content-type, content-encoding"),
    (b"access-control-max-age", b"86400"),
]


class Collector:
    """ASGI callable of the collector."""

    def __init__(self, settings: Settings, forwarder: Forwarder | None = None) -> None:
        keys = settings.write_keys
        if not keys:
            raise ValueError(
                "the collector needs write keys: set BESTAND_COLLECTOR_WRITE_KEYS "
                f"(BESTAND_ENV={settings.env})"
            )
        self._settings = settings
        self._keys = [key.encode() for key in keys]
        self._forwarder = forwarder or Forwarder(settings)
        pem = settings.collector_sendgrid_public_key
        self._sendgrid_key = None if pem is None else public_key(pem)
        self.metrics = CollectorMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self._forwarder.close)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        headers: Headers = [*JSON, *CORS]
        if path == "/metrics":
            await respond(send, 200, self.metrics.exposition(), METRICS)
            return
        try:
            status, body = await self._route(scope, receive, path, method)
        except HttpError as exc:
            status, headers = exc.status, [*headers, *exc.headers]
            body = orjson.dumps({"error": exc.error, "detail": exc.detail})
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            status = 500
            body = INTERNAL_ERROR
        await respond(send, status, body, headers)
        known = path in ROUTES or path in ("/health", "/ready", SHOPIFY_ROUTE, SENDGRID_ROUTE)
        route = path if known else "other"
        self.metrics.requests.labels(route, str(status)).observe(time.perf_counter() - started)

    async def _route(
        self, scope: Scope, receive: Receive, path: str, method: str
    ) -> tuple[int, bytes]:
        if path == "/health":
            return 200, b'{"status":"ok"}'
        if path == "/ready":
            try:
                await self._forwarder.ensure()
            except KafkaUnavailable as exc:
                raise HttpError(503, "unavailable", f"Kafka not reachable: {exc}") from None
            return 200, b'{"status":"ready"}'
        if path == SHOPIFY_ROUTE and method == "POST":
            return await self._shopify(scope, receive)
        if path == SENDGRID_ROUTE and method == "POST":
            return await self._sendgrid(scope, receive)
        if path not in ROUTES:
            raise HttpError(404, "not_found", f"no route {path}")
        if method == "OPTIONS":
            return 204, b""
        if method != "POST":
            raise HttpError(405, "method_not_allowed", f"{path} takes POST")
        route = ROUTES[path]
        settings = self._settings
        limit = (
            settings.collector_max_batch_bytes
            if route is None
            else settings.collector_max_event_bytes
        )
        basic = self._basic_key(scope)
        payload = self._payload(scope, await read_body(receive, limit), limit)
        if basic is None:
            given = payload.get("writeKey")
            self._check_key(given.encode() if isinstance(given, str) else None)
        received_at = datetime.now(UTC)
        if route is None:
            calls = payload.get("batch")
            if not isinstance(calls, list):
                raise HttpError(400, "schema", "a batch needs a list of calls in 'batch'")
            shared = payload.get("context")
            sent_at = payload.get("sentAt")
        else:
            calls, shared, sent_at = [{**payload, "type": route}], None, None
        return await self._take(calls, shared, sent_at, received_at)

    async def _shopify(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        """A Shopify webhook: its HMAC checked over the raw body, its topic by header, its
        webhook id the event id (Shopify sends a webhook again until it gets a 200)."""
        secret = self._settings.collector_shopify_secret
        if secret is None:
            raise HttpError(
                404, "not_found", "Shopify webhooks are off: set BESTAND_COLLECTOR_SHOPIFY_SECRET"
            )
        body = await read_body(receive, self._settings.collector_max_batch_bytes)
        signature = header(scope, b"x-shopify-hmac-sha256")
        if not signed(body, signature, secret.get_secret_value().encode()):
            raise HttpError(401, "unauthorized", "X-Shopify-Hmac-Sha256 does not match the body")
        payload = _json_object(body)
        topic = (header(scope, b"x-shopify-topic") or b"").decode("latin-1").strip()
        webhook = (header(scope, b"x-shopify-webhook-id") or b"").decode("latin-1")
        counted = self.metrics.calls
        try:
            outcome = from_shopify(topic, webhook, payload, received_at=datetime.now(UTC))
        except Refused as exc:
            counted.labels("shopify", "refused").inc()
            raise HttpError(400, exc.reason, exc.detail) from None
        if isinstance(outcome, Skipped):
            counted.labels("shopify", "skipped").inc()
            return 200, CollectorAnswer(forwarded=0, skipped=1).model_dump_json().encode()
        await self._send([_record(outcome, self._settings)])
        counted.labels("shopify", "forwarded").inc()
        return 200, CollectorAnswer(forwarded=1, skipped=0).model_dump_json().encode()

    async def _sendgrid(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        """SendGrid's Event Webhook: its signature and timestamp checked, then every event
        of the array mapped and forwarded."""
        if self._sendgrid_key is None:
            raise HttpError(
                404,
                "not_found",
                "SendGrid webhooks are off: set BESTAND_COLLECTOR_SENDGRID_PUBLIC_KEY",
            )
        body = await read_body(receive, self._settings.collector_max_batch_bytes)
        why = verified(
            self._sendgrid_key,
            body,
            header(scope, b"x-twilio-email-event-webhook-signature"),
            header(scope, b"x-twilio-email-event-webhook-timestamp"),
            now=time.time(),
            max_age_seconds=self._settings.collector_sendgrid_max_age_seconds,
        )
        if why is not None:
            raise HttpError(401, "unauthorized", f"SendGrid signature refused: {why}")
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HttpError(400, "invalid_json", f"body is not JSON: {exc}") from None
        if not isinstance(events, list):
            raise HttpError(400, "schema", "SendGrid posts a JSON array of events")
        return await self._forward(events, from_sendgrid, lambda _: "sendgrid")

    async def _send(self, records: list[Record]) -> None:
        """Forward to Kafka; a 503 with ``Retry-After`` when Kafka does not take them."""
        try:
            await self._forwarder.send(records)
        except KafkaUnavailable as exc:
            raise HttpError(
                503,
                "unavailable",
                f"Kafka did not take the events ({exc}); send them again",
                [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
            ) from None

    async def _take(
        self, calls: list[Any], shared: Any, sent_at: Any, received_at: datetime
    ) -> tuple[int, bytes]:
        """Map every Segment call, forward the events, answer with what became of them."""
        settings = self._settings

        def one(call: Any) -> Mapped | Skipped:
            return _one(call, shared, sent_at, received_at, settings)

        def label(call: Any) -> str:
            kind = call.get("type") if isinstance(call, Mapping) else None
            return kind if kind in CALL_TYPES else "other"

        return await self._forward(calls, one, label)

    async def _forward(
        self,
        calls: list[Any],
        one: Callable[[Any], Mapped | Skipped],
        label_of: Callable[[Any], str],
    ) -> tuple[int, bytes]:
        """Map every item with ``one``, forward the events, answer with what became of them
        (a 400 listing the refused items, the others forwarded all the same)."""
        settings = self._settings
        records: list[Record] = []
        labels: list[str] = []
        failed: list[RefusedCall] = []
        skipped = 0
        counted = self.metrics.calls
        for index, call in enumerate(calls):
            label = label_of(call)
            try:
                outcome = one(call)
            except Refused as exc:
                failed.append(RefusedCall(index=index, reason=exc.reason, detail=exc.detail))
                counted.labels(label, "refused").inc()
                continue
            if isinstance(outcome, Skipped):
                skipped += 1
                counted.labels(label, "skipped").inc()
                continue
            records.append(_record(outcome, settings))
            labels.append(label)
        await self._send(records)
        for label in labels:
            counted.labels(label, "forwarded").inc()
        if failed:
            shown = "; ".join(f"{f.index}: {f.detail}" for f in failed[:3])
            detail = f"{len(failed)} of {len(calls)} calls refused ({shown})"
            if records or skipped:
                detail += "; the others were taken"
            refusal = CollectorRefusal(
                error=failed[0].reason,
                detail=detail,
                failed=failed,
                forwarded=len(records),
                skipped=skipped,
            )
            return 400, refusal.model_dump_json().encode()
        answer = CollectorAnswer(forwarded=len(records), skipped=skipped)
        return 200, answer.model_dump_json().encode()

    def _basic_key(self, scope: Scope) -> bytes | None:
        """The write key of an ``Authorization: Basic`` header (checked), None without one."""
        value = header(scope, b"authorization")
        if value is None or value[:6].lower() != b"basic ":
            return None
        try:
            user = base64.b64decode(value[6:].strip(), validate=True).split(b":", 1)[0]
        except (binascii.Error, ValueError):
            raise HttpError(401, "unauthorized", "malformed Basic authorization") from None
        self._check_key(user)
        return user

    def _check_key(self, given: bytes | None) -> None:
        if not given:
            raise HttpError(
                401,
                "unauthorized",
                "give the write key as the Basic user name or as writeKey in the body",
                [(b"www-authenticate", b'Basic realm="bestand collector"')],
            )
        known = False
        for key in self._keys:  # every key compared, in constant time each
            known |= hmac.compare_digest(given, key)
        if not known:
            raise HttpError(401, "unauthorized", "unknown write key")

    def _payload(self, scope: Scope, body: bytes, limit: int) -> Mapping[str, Any]:
        encoding = (header(scope, b"content-encoding") or b"").strip().lower()
        if encoding == b"gzip":
            inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            try:
                body = inflater.decompress(body, limit + 1)
            except zlib.error as exc:
                raise HttpError(400, "invalid_body", f"not gzip: {exc}") from None
            if len(body) > limit or inflater.unconsumed_tail:
                raise HttpError(413, "body_too_large", f"request body exceeds {limit} bytes")
        elif encoding not in (b"", b"identity"):
            raise HttpError(415, "unsupported_encoding", "bodies are JSON, plain or gzip")
        return _json_object(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HttpError(400, "schema", "the body must be a JSON object")
    return payload


def _one(
    call: Any, shared: Any, sent_at: Any, received_at: datetime, settings: Settings
) -> Mapped | Skipped:
    """One call of a request: within the size limit, the batch's context under its own."""
    if not isinstance(call, Mapping):
        raise Refused("schema", "a call must be a JSON object")
    if len(orjson.dumps(call)) > settings.collector_max_event_bytes:
        raise Refused("too_large", f"a call may hold {settings.collector_max_event_bytes} bytes")
    if isinstance(shared, Mapping):
        call = {**call, "context": {**shared, **_object(call.get("context"))}}
    return from_segment(
        call,
        received_at=received_at,
        default_currency=settings.collector_default_currency,
        sent_at=sent_at,
    )


def _record(mapped: Mapped, settings: Settings) -> Record:
    event = mapped.event
    return topic_for(event, settings), key_for(event), orjson.dumps(event)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def create_collector(settings: Settings, forwarder: Forwarder | None = None) -> Collector:
    """Build the ASGI app for ``settings``."""
    return Collector(settings, forwarder)


def collector_from_environment() -> Collector:
    """ASGI factory for ``uvicorn --factory``: settings from the environment."""
    return create_collector(Settings())
