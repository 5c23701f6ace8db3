"""The worker's own small HTTP endpoint: ``/metrics``, ``/health`` and ``/ready``.

Probes and a Prometheus scrape are all it serves: GET, a handful of requests a minute, one
response per connection. A few lines on asyncio's streams do that without a web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_MAX_HEADER_BYTES = 16384


@dataclass(frozen=True, slots=True)
class Response:
    """What a route answers."""

    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: object, status: int = 200) -> Response:
        """A JSON response."""
        return cls(status, orjson.dumps(data))


Route = Callable[[], Response]


class WebEndpoint:
    """Serves GET routes on a host and port until stopped."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self._host = host
        self._port = port
        self._routes = dict(routes)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen (the port must be free)."""
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            response = self._answer(head[:_MAX_HEADER_BYTES])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            response = Response(400, b"bad request\n", "text/plain")
        except Exception:  # a route's bug must not take the endpoint down
            log.exception("the worker's web endpoint failed to answer")
            response = Response.json({"status": "error"}, 500)
        reason = _REASONS.get(response.status, "Error")
        writer.write(
            f"HTTP/1.1 {response.status} {reason}\r\nContent-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\nConnection: close\r\n\r\n".encode()
            + response.body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _answer(self, head: bytes) -> Response:
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        route = self._routes.get(path)
        if route is None:
            return Response.json({"status": "not_found", "paths": sorted(self._routes)}, 404)
        if method not in ("GET", "HEAD"):
            return Response.json({"status": "method_not_allowed"}, 405)
        return route()
