"""bestand's Redis module (``native/module``) against the Lua scripts it mirrors.

The worker's script calls over a simulated shop are recorded, then replayed in order on an
emptied prefix twice: as the Lua scripts and as the module's commands. Every reply and every
key written must be the same. The worker takes the module only where Redis has it and only for
the scripts whose SHA-1 it was built for.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from support import PROJECT_DIR

from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.stack import LocalRedis, free_port
from bestand.stack.redis import module_file
from bestand.store import Keys, StoreConflict, connect
from bestand.store.keys import LOG_INLINE
from bestand.store.scripts import NAMES, ModuleMissing, Script, Scripts
from bestand.stream.worker import processor_for
from stages import raw_messages

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from resp import unpacked

pytestmark = pytest.mark.skipif(
    module_file() is None, reason="bestand's Redis module is not built (make install builds it)"
)

MODULE_SCRIPTS = ["graph_apply", "graph_read", "persons_read", "persons_write"]


def record(settings: Settings, persons: int, seed: int) -> list[list[bytes]]:
    """The script calls (``EVALSHA`` and its arguments) of the batch processor over a
    ``persons`` shop, in batches of 500, as Lua scripts."""
    calls: list[list[bytes]] = []

    class Recording(Scripts):
        __slots__ = ()

        async def send(self, client: Any, commands: Sequence[bytes]) -> list[Any]:
            calls.extend(unpacked(command) for command in commands)
            return await super().send(client, commands)

    async def run() -> None:
        client = connect(settings.redis_url)
        scripts = Recording(*(Script.named(name) for name in NAMES))
        processor = processor_for(settings, client, WorkerMetrics(), scripts)
        messages = raw_messages(settings, simulate(persons=persons, seed=seed).events)
        try:
            for start in range(0, len(messages), 500):
                await processor.process(messages[start : start + 500])
        finally:
            await client.aclose()

    asyncio.run(run())
    return calls


def clear(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, Any]:
    """Every key of the prefix: its type, value (hash fields as a dict), and whether it
    expires."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = client.type(key)
        value: Any
        if kind == b"string":
            value = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = kind
        out[key] = (kind, value, client.ttl(key) > 0)
    return out


def replay(
    client: redis.Redis, calls: list[list[bytes]], names: dict[bytes, str], module: bool
) -> list[Any]:
    """Run the calls in order, as the scripts or as the module's commands; their replies."""
    replies = []
    for call in calls:
        if module:
            call = [f"bestand.{names[call[1]]}".encode(), *call[2:]]
        replies.append(client.execute_command(*call))
    return replies


@pytest.fixture
def module_url(redis_url: str) -> str:
    """The tests' Redis, which the local stack starts with the module (a container's has not)."""
    try:
        redis.Redis.from_url(redis_url).execute_command("bestand.scripts")
    except redis.ResponseError:
        pytest.skip("the tests' Redis has not bestand's module loaded")
    return redis_url


@pytest.fixture
def settings(module_url: str) -> Settings:
    return Settings(
        redis_url=module_url,
        redis_prefix="modeq",
        resolve="native",
        fold="native",
        _env_file=None,  # type: ignore[call-arg]
    )


def compare(
    client: redis.Redis, prefix: str, calls: list[list[bytes]], names: dict[bytes, str]
) -> dict[bytes, Any]:
    """Replay the calls as the scripts and as the module's commands: the same replies and
    the same keys; the keys the scripts wrote."""
    clear(client, prefix)
    lua_replies = replay(client, calls, names, module=False)
    lua = snapshot(client, prefix)
    clear(client, prefix)
    module_replies = replay(client, calls, names, module=True)
    compiled = snapshot(client, prefix)
    clear(client, prefix)
    for n, (one, other) in enumerate(zip(lua_replies, module_replies, strict=True)):
        assert one == other, f"call {n} ({names[calls[n][1]]}) answered differently"
    assert compiled.keys() == lua.keys()
    differ = [key for key in lua if lua[key] != compiled[key]]
    assert differ == []
    return lua


def test_the_module_writes_and_answers_what_the_scripts_do(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    prefix = settings.redis_prefix
    clear(client, prefix)
    calls = record(settings, persons=400, seed=17)
    names = {script.sha.encode(): script.name for script in Scripts.load().all()}
    assert {names[call[1]] for call in calls} == set(MODULE_SCRIPTS)

    lua = compare(client, prefix, calls, names)
    # The history is one that merges persons, moves cookies and flags junk.
    graph = f"{prefix}:{{g}}"

    def marked(lua: dict[bytes, Any], bucket: str, mark: bytes) -> int:
        """Fields of the facts or graph buckets with a mark (logs, redirects, meetings)."""
        head = f"{graph}{bucket}".encode()
        return sum(
            1
            for key, (_, value, *_) in lua.items()
            if key.startswith(head) and isinstance(value, dict)
            for field in value
            if field.startswith(mark)
        )

    assert marked(lua, ":k:", b"r:"), "redirects"
    assert marked(lua, ":i:", b"+"), "meetings"
    for part, what in [(":j:", "junk flags"), (":c:", "claims")]:
        assert any(key.startswith(f"{graph}{part}".encode()) for key in lua), what
    assert len(lua) > 5000

    # Explain logs longer than a bucket's field holds become lists: the same calls with a
    # short limit (the key schema is an argument) make many of them, and take every path of
    # a log growing out of its field (appended to, absorbing another, losing a cookie).
    inline = f'"log_inline":{LOG_INLINE}'.encode()
    short = [[arg.replace(inline, b'"log_inline":300') for arg in call] for call in calls]
    assert short != calls
    lua = compare(client, prefix, short, names)
    lists = [key for key in lua if key.startswith(f"{graph}:x:".encode())]
    fields = marked(lua, ":k:", b"y:")
    assert len(lists) > 20
    assert fields > 100


def test_the_worker_takes_the_module_where_redis_has_it(module_url: str) -> None:
    async def check() -> None:
        client = connect(module_url)
        try:
            scripts = Scripts.load()
            assert await scripts.use_module(client, "auto") == MODULE_SCRIPTS
            assert await scripts.use_module(client, "on") == MODULE_SCRIPTS
            assert await scripts.use_module(client, "off") == []
            assert scripts.native == {}
            # A module built for another version of a script is not used for it.
            other = Scripts.load()
            changed = Script("graph_apply", other.graph_apply.source + "\n", "0" * 40)
            mismatched = Scripts(
                other.graph_read, changed, other.erase, other.persons_read, other.persons_write
            )
            assert "graph_apply" not in await mismatched.use_module(client, "auto")
            assert await mismatched.use_module(client, "auto") == [
                "graph_read",
                "persons_read",
                "persons_write",
            ]
        finally:
            await client.aclose()

    asyncio.run(check())


def test_without_the_module_the_scripts_run_or_the_worker_refuses(tmp_path: Path) -> None:
    server = LocalRedis(
        tmp_path, port=free_port(), project_dir=PROJECT_DIR, log=lambda _: None, module=None
    )
    server.start()
    server.wait_ready(30)

    async def check() -> None:
        client = connect(server.url)
        try:
            scripts = Scripts.load()
            assert await scripts.use_module(client, "auto") == []
            with pytest.raises(ModuleMissing, match="--loadmodule"):
                await scripts.use_module(client, "on")
        finally:
            await client.aclose()

    try:
        asyncio.run(check())
    finally:
        server.stop()


def test_a_worker_that_loses_the_module_runs_the_scripts(module_url: str) -> None:
    """Redis restarted without the module: the call fails once as a conflict (which the
    worker retries), and the scripts run from then on."""
    empty_read = (2, b"$1\r\n0\r\n$1\r\n0\r\n")  # no persons, no markers

    async def check() -> None:
        client = connect(module_url)
        try:
            scripts = Scripts.load()
            await scripts.use_module(client, "auto")
            assert await scripts.send(client, [scripts.command(scripts.persons_read, empty_read)])
            scripts.native["persons_read"] = "bestand.no_such_command"
            with pytest.raises(StoreConflict, match="module"):
                await scripts.send(client, [scripts.command(scripts.persons_read, empty_read)])
            assert scripts.native == {}
            reply = await scripts.send(client, [scripts.command(scripts.persons_read, empty_read)])
            assert reply == [[[], []]]
        finally:
            await client.aclose()

    asyncio.run(check())


GRAPH_SCHEMA = Keys("hostile").graph_schema
PERSON_SCHEMA = Keys("hostile").person_schema


@pytest.mark.parametrize(
    "call",
    [
        ["bestand.graph_read"],
        ["bestand.graph_read", "x"],
        ["bestand.graph_read", "5", "k"],
        ["bestand.graph_read", "0", "{not json"],
        ["bestand.graph_read", "0", GRAPH_SCHEMA, "2", "a"],
        ["bestand.graph_read", "0", GRAPH_SCHEMA, "0", "many"],
        ["bestand.graph_apply", "0", "{}", "stop", "20", ""],
        ["bestand.graph_apply", "0", GRAPH_SCHEMA, "stop", "20", "", "[1, 2]"],
        [
            "bestand.graph_apply",
            "0",
            GRAPH_SCHEMA,
            "stop",
            "20",
            "",
            '{"person": "p", "attach": [[1]]}',
        ],
        ["bestand.graph_apply", "0", GRAPH_SCHEMA, "stop", "x", "", "{}"],
        ["bestand.persons_read", "1", "hostile:p:{a}", "x"],
        ["bestand.persons_read", "1", "hostile:p:{a}"],
        ["bestand.persons_write", "0", PERSON_SCHEMA, "60", "1", "not json"],
        ["bestand.persons_write", "0", PERSON_SCHEMA, "60", "1", '{"write": [["a", 1, 99]]}'],
        ["bestand.persons_write", "0", PERSON_SCHEMA, "60", "2", '{"guard": 7}'],
        ["bestand.persons_write", "0", PERSON_SCHEMA, "60", "1", '{"lookups": [[1]]}'],
    ],
)
def test_a_malformed_call_gets_an_error_and_redis_stays_up(
    module_url: str, call: list[str]
) -> None:
    client = redis.Redis.from_url(module_url)
    with pytest.raises(redis.ResponseError) as error:
        client.execute_command(*call)
    assert str(error.value), "an error says why"
    assert client.ping()
    assert client.execute_command("bestand.scripts")
