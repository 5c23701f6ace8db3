"""What bestand's two HTTP services (the lookup API and the collector) share: ASGI types, an
error with a status and a reason, a response with a length, a body read within a limit.

Both are plain ASGI applications: framework layers cost more than the server on their hot
paths (see the README's performance notes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON: Headers = [(b"content-type", b"application/json")]
#: The body of a 500: the trace goes to the server's log, never to the client.
INTERNAL_ERROR = b'{"error":"internal","detail":"internal error; see server log"}'
METRICS: Headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]


class HttpError(Exception):
    """An answer other than 200, with a stable code and a reason."""

    def __init__(
        self, status: int, error: str, detail: str, headers: Headers | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or []


async def respond(send: Send, status: int, body: bytes, headers: Headers = JSON) -> None:
    """Send a whole response: a length instead of chunked framing, so the client knows the
    end at once."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body; a 413 as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "disconnected", "client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "body_too_large", f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def lifespan(
    receive: Receive, send: Send, on_shutdown: Callable[[], Awaitable[None]]
) -> None:
    """Answer the server's lifespan messages; ``on_shutdown`` closes the app's connections."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (names are lower case in ASGI), None when absent."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None
