"""Connecting to Redis with the settings' URL."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str, *, max_connections: int = 64) -> Redis:
    """An asyncio Redis client for ``url``; connections open lazily on first use."""
    return Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        decode_responses=False,
    )
