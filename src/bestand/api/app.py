"""The lookup HTTP API as a lean ASGI application.

The hot route does little besides parsing a query string, one Redis read and one orjson
dump: framework layers cost more than the server on this path (see the README's
performance notes). Every error is a JSON body with a code and a reason, never a trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import TypeVar
from urllib.parse import parse_qsl, unquote

import orjson
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bestand.access import ROUTE_SCOPES
from bestand.access import Scope as KeyScope
from bestand.api.auth import ApiKeys, presented_key
from bestand.api.models import (
    IDENTIFIER_PARAMS,
    BatchClassificationRequest,
    BatchLookupRequest,
)
from bestand.api.openapi import openapi_document
from bestand.api.service import LookupService
from bestand.api.widget import SNIPPET, RateLimit
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
from bestand.identity import IdentityKeyer, InvalidIdentifier
from bestand.kafka.explain_topic import read_history
from bestand.ops.metrics import ApiMetrics
from bestand.settings import Settings
from bestand.store import (
    ClusterNotSupported,
    IdentityGraph,
    Keys,
    LookupReader,
    ProfileStore,
)
from bestand.store.connection import refuse_cluster
from bestand.store.lookups import Overloaded
from bestand.store.router import connect_store
from bestand.store.values import ThresholdCache

log = logging.getLogger(__name__)

B = TypeVar("B", bound=BaseModel)
_MAX_BODY = 1_048_576


def _package_version() -> str:
    try:
        return version("bestand")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _day_range(query_string: bytes) -> tuple[date, date]:
    """``from`` and ``to`` (ISO days, inclusive) of a report query, at most 366 days apart."""
    params = dict(parse_qsl(query_string.decode("latin-1")))
    try:
        start = date.fromisoformat(params["from"])
        end = date.fromisoformat(params["to"])
    except KeyError:
        raise HttpError(
            400, "missing_parameter", "give from=YYYY-MM-DD and to=YYYY-MM-DD"
        ) from None
    except ValueError as exc:
        raise HttpError(400, "invalid_parameter", f"not a day: {exc}") from None
    if end < start or (end - start).days > 366:
        raise HttpError(400, "invalid_parameter", "to must follow from, at most 366 days later")
    return start, end


#: The widget's lookup and its snippet (``api/widget.py``).
WIDGET_ROUTE = "/v1/widget"
WIDGET_SNIPPET = "/v1/widget.js"


def endpoint_of(path: str, method: str) -> str:
    """The metrics label of a request: its route, never the raw path (bounded cardinality)."""
    if path == "/v1/lookup":
        return "lookup_batch" if method == "POST" else "lookup"
    if path == "/v1/orders/classification":
        return "classification_batch"
    if path.startswith("/v1/orders/") and path.endswith("/classification"):
        return "classification"
    if path.startswith("/v1/persons/") and path.endswith("/explain"):
        return "explain"
    return {
        "/v1/reports/campaigns": "report",
        "/health": "health",
        "/ready": "ready",
        "/metrics": "metrics",
        "/openapi.json": "openapi",
        WIDGET_ROUTE: "widget",
        WIDGET_SNIPPET: "widget_snippet",
    }.get(path, "other")


class LookupApi:
    """ASGI callable serving ``/v1/lookup``, ``/health``, ``/ready`` and ``/openapi.json``."""

    def __init__(self, settings: Settings, client: Redis | None = None) -> None:
        self._settings = settings
        self._client = client or connect_store(settings.redis_url, settings.redis_cluster)
        self._checked_redis = False  # set once /ready found the kind of Redis the settings say
        self._keys = ApiKeys(settings.scoped_api_keys)
        keyer = IdentityKeyer(
            settings.hmac_secret.get_secret_value().encode(), settings.default_phone_region
        )
        rules = settings.lifecycle_rules
        keys = Keys(settings.redis_prefix)
        self.service = LookupService(
            LookupReader(
                self._client,
                keys,
                max_waiting=settings.api_max_waiting_lookups,
                timeout=settings.api_redis_timeout_ms / 1000,
            ),
            keyer,
            rules,
            graph=IdentityGraph(self._client, keys, policy=settings.policy),
            profiles=ProfileStore(
                self._client, keys, settings.dedupe_ttl_seconds, rule=settings.customer_rule
            ),
            offers=settings.offers,
            value_rules=settings.value_rules,
            thresholds=ThresholdCache(self._client, keys, rule=settings.customer_rule),
            topic_history=(
                partial(read_history, settings) if settings.explain_links == "topic" else None
            ),
        )
        self._openapi = orjson.dumps(openapi_document(_package_version()))
        self.metrics = ApiMetrics()
        self._widget_origins = frozenset(settings.widget_origins)
        self._widget_rate = RateLimit(settings.widget_rate_per_minute)

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self._client.aclose)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        if scope["path"] == "/metrics":
            await respond(send, 200, self.metrics.exposition(), METRICS)
            return
        headers = JSON
        widget = scope["path"] in (WIDGET_ROUTE, WIDGET_SNIPPET)
        try:
            if widget:
                headers = self._widget_cors(scope)
                status, body, headers = await self._widget(scope, headers)
            else:
                status, body = await self._route(scope, receive)
        except HttpError as exc:
            status = exc.status
            body = orjson.dumps({"error": exc.error, "detail": exc.detail})
            headers = [*headers, *exc.headers]
        except (RedisError, TimeoutError) as exc:
            log.warning("redis unavailable: %s", exc or "no answer in time")
            status = 503
            body = orjson.dumps({"error": "unavailable", "detail": "state store not reachable"})
        except Overloaded as exc:
            status = 503
            body = orjson.dumps({"error": "overloaded", "detail": str(exc)})
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            status = 500
            body = INTERNAL_ERROR
        await respond(send, status, body, headers)
        endpoint = endpoint_of(scope["path"], scope["method"])
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(endpoint, str(status)).observe(elapsed)

    def _widget_cors(self, scope: Scope) -> Headers:
        """The JSON headers, with the CORS ones for an origin of the shop's; 403 for another
        browser origin (a request without ``Origin`` is no browser's: CORS does not apply)."""
        origin = header(scope, b"origin")
        if origin is None:
            return JSON
        if origin.decode("latin-1") not in self._widget_origins:
            raise HttpError(
                403, "origin_not_allowed", "this origin is not in BESTAND_WIDGET_ORIGINS"
            )
        return [*JSON, (b"access-control-allow-origin", origin), (b"vary", b"Origin")]

    async def _widget(self, scope: Scope, cors: Headers) -> tuple[int, bytes, Headers]:
        """``/v1/widget.js`` and ``/v1/widget``: see ``api/widget.py``."""
        method = scope["method"]
        if method == "OPTIONS":
            allow = [(b"access-control-allow-methods", b"GET"), (b"access-control-max-age", b"600")]
            return 204, b"", [*cors, *allow]
        if method != "GET":
            raise HttpError(405, "method_not_allowed", f"{method} is not allowed here")
        if scope["path"] == WIDGET_SNIPPET:
            script = [(b"content-type", b"application/javascript; charset=utf-8"),
                      (b"cache-control", b"public, max-age=300")]  # fmt: skip
            return 200, SNIPPET, [*cors[len(JSON) :], *script]
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self._widget_rate.take(str(client))
        if wait > 0:
            raise HttpError(
                429,
                "rate_limited",
                f"at most {self._settings.widget_rate_per_minute} widget lookups a minute",
                [(b"retry-after", str(max(1, round(wait))).encode())],
            )
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        unknown = sorted(set(params) - {"anonymous_id", "key"})
        if unknown:
            raise HttpError(
                400, "unknown_parameter", f"a widget asks by anonymous_id only, not {unknown}"
            )
        presented = params.get("key") or presented_key(dict(scope["headers"]))
        key_scope = self._keys.scope_of(presented)
        if key_scope is None:
            raise HttpError(401, "unauthorized", "give the widget key as key=...")
        if key_scope not in ROUTE_SCOPES["widget"]:
            raise HttpError(403, "forbidden", f"a '{key_scope}' key does not answer widgets")
        value = params.get("anonymous_id", "")
        if not value.strip():
            raise HttpError(400, "one_identifier", "give anonymous_id (the visitor's cookie)")
        try:
            answer = await self.service.lookup("anonymous_id", value, "widget")
        except InvalidIdentifier as exc:
            raise HttpError(400, "invalid_identifier", f"anonymous_id: {exc}") from None
        return 200, orjson.dumps(answer), cors

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/health":
            return 200, b'{"status":"ok"}'
        if path == "/ready":
            try:
                await self._client.ping()
                if not self._checked_redis:
                    cluster = self._settings.redis_cluster
                    await refuse_cluster(self._client, self._settings.redis_url, cluster)
                    self._checked_redis = True
            except (RedisError, OSError) as exc:
                raise HttpError(503, "not_ready", f"redis not reachable: {exc}") from None
            except ClusterNotSupported as exc:
                raise HttpError(503, "not_ready", str(exc)) from None
            return 200, b'{"status":"ready"}'
        if path == "/openapi.json":
            return 200, self._openapi
        explain = path.startswith("/v1/persons/") and path.endswith("/explain")
        classify = path.startswith("/v1/orders/") and path.endswith("/classification")
        batch_classify = path == "/v1/orders/classification"
        report = path == "/v1/reports/campaigns"
        if path != "/v1/lookup" and not explain and not classify and not report:
            raise HttpError(404, "not_found", f"no route {path}; see /openapi.json")
        headers = dict(scope["headers"])
        key_scope = self._keys.scope_of(presented_key(headers))
        if key_scope is None:
            raise HttpError(
                401, "unauthorized", "send a valid key as 'Authorization: Bearer <key>'"
            )
        route = (
            "report"
            if report
            else "explain"
            if explain
            else "classification"
            if classify or batch_classify
            else "lookup"
        )
        allowed = ROUTE_SCOPES[route]
        if key_scope not in allowed:
            raise HttpError(
                403,
                "forbidden",
                f"this key's scope '{key_scope}' does not allow {path}; "
                f"it needs one of: {', '.join(sorted(allowed))}",
            )
        if report:
            if method != "GET":
                raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            start, end = _day_range(scope["query_string"])
            return 200, orjson.dumps(await self.service.campaign_report(start, end))
        if batch_classify:
            if method != "POST":
                raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            return 200, await self._classify_batch(await read_body(receive, _MAX_BODY))
        if classify:
            if method != "GET":
                raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            order_id = unquote(path.removeprefix("/v1/orders/").removesuffix("/classification"))
            try:
                result = await self.service.classification(order_id)
            except InvalidIdentifier as exc:
                raise HttpError(400, "invalid_identifier", f"order_id: {exc}") from None
            if result is None:
                raise HttpError(404, "unknown_order", f"no order {order_id!r}")
            return 200, orjson.dumps(result)
        if explain:
            if method != "GET":
                raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}")
            person_id = unquote(path.removeprefix("/v1/persons/").removesuffix("/explain"))
            found = await self.service.explain(person_id)
            if found is None:
                raise HttpError(404, "unknown_person", f"no person {person_id!r}")
            return 200, orjson.dumps(found)
        if method == "GET":
            return 200, await self._lookup_one(scope["query_string"], key_scope)
        if method == "POST":
            return 200, await self._lookup_batch(await read_body(receive, _MAX_BODY), key_scope)
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}")

    async def _lookup_one(self, query_string: bytes, key_scope: KeyScope) -> bytes:
        params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        given = [(name, value) for name, value in params if name in IDENTIFIER_PARAMS]
        unknown = sorted({name for name, _ in params} - set(IDENTIFIER_PARAMS))
        if unknown:
            raise HttpError(400, "unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}")
        if len(given) != 1:
            raise HttpError(
                400,
                "one_identifier",
                "give exactly one of " + ", ".join(IDENTIFIER_PARAMS) + f" (got {len(given)})",
            )
        name, value = given[0]
        try:
            answer = await self.service.lookup(name, value, key_scope)
        except InvalidIdentifier as exc:
            raise HttpError(400, "invalid_identifier", f"{name}: {exc}") from None
        return orjson.dumps(answer)

    def _parse_batch(self, model: type[B], body: bytes, size: Callable[[B], int], what: str) -> B:
        """Validate a batch body; a bad body is a 400, too many items a 413."""
        try:
            request = model.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            loc = ".".join(str(p) for p in first["loc"]) or "body"
            raise HttpError(400, "invalid_body", f"{loc}: {first['msg']}") from None
        count, limit = size(request), self._settings.api_max_batch
        if count > limit:
            raise HttpError(413, "batch_too_large", f"{count} {what}; at most {limit}")
        return request

    async def _classify_batch(self, body: bytes) -> bytes:
        request = self._parse_batch(
            BatchClassificationRequest, body, lambda r: len(r.order_ids), "orders"
        )
        return orjson.dumps({"results": await self.service.classifications(request.order_ids)})

    async def _lookup_batch(self, body: bytes, key_scope: KeyScope) -> bytes:
        request = self._parse_batch(
            BatchLookupRequest, body, lambda r: len(r.identifiers), "identifiers"
        )
        items: list[tuple[str, str]] = []
        for position, item in enumerate(request.identifiers):
            if len(item) != 1:
                raise HttpError(
                    400, "one_identifier", f"identifiers.{position}: give exactly one identifier"
                )
            ((name, value),) = item.items()
            if name not in IDENTIFIER_PARAMS:
                raise HttpError(
                    400, "unknown_identifier", f"identifiers.{position}: unknown '{name}'"
                )
            items.append((name, value))
        return orjson.dumps({"results": await self.service.lookup_many(items, key_scope)})


def create_api(settings: Settings, client: Redis | None = None) -> LookupApi:
    """Build the ASGI app for ``settings``."""
    return LookupApi(settings, client)


def app_from_environment() -> LookupApi:
    """ASGI factory for ``uvicorn --factory`` worker processes: settings from the environment."""
    return create_api(Settings())
