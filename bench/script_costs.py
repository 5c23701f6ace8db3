"""Redis's time per Lua script and event: the worker's script calls, recorded and replayed.

The batch processor runs in-process over a simulated shop (as ``bench/stages.py`` does) and
every script call it makes is recorded; the calls are then replayed in order on an emptied
key prefix, each call's time read from Redis's ``SLOWLOG`` (the time inside Redis, without
the network or the client). The replay repeats exactly the writes of the first run, so a
script changed in ``--scripts DIR`` (same arguments, another body) can be timed against the
shipped one on the same history: reads are free to change, writes must stay equivalent.

    python bench/script_costs.py --persons 8000 [--rounds 2] [--scripts DIR] [--module]

Prints µs of Redis time per event for each script, per round (rounds alternate the shipped
scripts and ``--scripts``, when given). With ``--module`` (a Redis started with bestand's
module, ``native/module``), the calls are first replayed as the scripts and as the module's
commands and every reply and key compared, and each round times the module's commands too.
Uses its own key prefix and removes it; sets ``slowlog-log-slower-than`` for the replay and
puts it back.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import redis

from bestand.ingest.producer import topic_for
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import scripts as script_module
from bestand.stream.messages import Incoming
from resp import script_call
from stages import batch_settings, clear
from stages import run as run_stages

Call = tuple[str, list[Any], list[Any]]


def record(persons: int) -> tuple[list[Call], int, Settings]:
    """The script calls of one in-process pass over a ``persons`` shop (batches of 2,000),
    the number of events, and the settings of the key prefix they name."""
    calls: list[Call] = []
    queue, call, send = (
        script_module.Script.queue,
        script_module.Scripts.call,
        script_module.Scripts.send,
    )
    names = {script.sha: script.name for script in script_module.Scripts.load().all()}

    def queued(self: Any, pipe: Any, keys: Any, args: Any) -> None:
        calls.append((self.name, list(keys), list(args)))
        queue(self, pipe, keys, args)

    async def called(self: Any, client: Any, script: Any, keys: Any, args: Any) -> Any:
        calls.append((script.name, list(keys), list(args)))
        return await call(self, client, script, keys, args)

    async def sent(self: Any, client: Any, commands: Any) -> Any:
        for command in commands:
            sha, keys, args = script_call(command)
            calls.append((names[sha], keys, args))
        return await send(self, client, commands)

    settings = Settings()
    os.environ["BESTAND_REDIS_MODULE"] = "off"  # the calls are recorded as the scripts
    events = simulate(persons=persons, seed=3).events
    messages = [
        Incoming(topic_for(e, settings), 0, i, None, orjson.dumps(e)) for i, e in enumerate(events)
    ]
    script_module.Script.queue = queued  # type: ignore[method-assign]
    script_module.Scripts.call = called  # type: ignore[method-assign]
    script_module.Scripts.send = sent  # type: ignore[method-assign]
    try:
        asyncio.run(run_stages(messages, 2000))
    finally:
        script_module.Script.queue = queue  # type: ignore[method-assign]
        script_module.Scripts.call = call  # type: ignore[method-assign]
        script_module.Scripts.send = send  # type: ignore[method-assign]
    return calls, len(messages), batch_settings(2000)


def replay(
    client: redis.Redis,
    calls: list[Call],
    settings: Settings,
    sources: dict[str, str],
    module: frozenset[str] = frozenset(),
    snapshot: dict[bytes, Any] | None = None,
) -> Counter[str]:
    """Microseconds inside Redis per script over the calls, replayed in order on the
    settings' key prefix (empty before, emptied after). Scripts named in ``module`` run as
    the module's commands; ``snapshot`` receives every key's value and each call's reply."""
    shas = {name: client.script_load(source) for name, source in sources.items()}
    spent: Counter[str] = Counter()
    replies: list[Any] = []
    before = client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    # Scripts take milliseconds, the commands they call microseconds: only scripts are logged.
    client.config_set("slowlog-log-slower-than", 100)
    try:
        client.slowlog_reset()
        for n, (name, keys, args) in enumerate(calls):
            if name in module:
                command: tuple[Any, ...] = (f"bestand.{name}",)
            else:
                command = ("EVALSHA", shas[name])
            replies.append(client.execute_command(*command, len(keys), *keys, *args))
            entry = client.slowlog_get(1)
            if entry and entry[0]["command"].split()[0].lower() == command[0].lower().encode():
                spent[name] += entry[0]["duration"]
            if n % 200 == 0:
                client.slowlog_reset()
        if snapshot is not None:
            snapshot.update(store_snapshot(client, settings))
            snapshot[b"(replies)"] = replies
    finally:
        client.config_set("slowlog-log-slower-than", before)
        asyncio.run(clear(settings))
    return spent


def compare(
    client: redis.Redis,
    calls: list[Call],
    settings: Settings,
    shipped: dict[str, str],
    compiled: frozenset[str],
) -> None:
    """Replay the calls as the scripts and as the module's commands; print what differs."""
    lua: dict[bytes, Any] = {}
    native: dict[bytes, Any] = {}
    replay(client, calls, settings, shipped, snapshot=lua)
    replay(client, calls, settings, shipped, compiled, snapshot=native)
    differ = [key for key in lua.keys() | native.keys() if lua.get(key) != native.get(key)]
    print(f"module: {', '.join(sorted(compiled))}; {len(lua) - 1} keys, {len(differ)} differ")
    replies = zip(lua.pop(b"(replies)", []), native.pop(b"(replies)", []), strict=True)
    for n, (one, other) in enumerate(replies):
        if one != other:
            texts = str(one), str(other)
            at = next(i for i, (a, b) in enumerate(zip(*texts, strict=False)) if a != b)
            print(f"  reply {n} ({calls[n][0]}) at {at}:")
            print(f"    script {texts[0][at - 200 : at + 200]}")
            print(f"    module {texts[1][at - 200 : at + 200]}")
            break
    for key in sorted(differ)[:10]:
        print(f"  {key!r}: script {str(lua.get(key))[:200]}")
        print(f"    module {str(native.get(key))[:200]}")


def has_command(client: redis.Redis, name: str) -> bool:
    """Whether this Redis knows the command (a loaded module's)."""
    try:
        client.execute_command(name)
    except redis.ResponseError as error:
        return "unknown command" not in str(error)
    return True


def store_snapshot(client: redis.Redis, settings: Settings) -> dict[bytes, Any]:
    """Every key of the settings' prefix with its type and value (for comparing replays)."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
        kind = client.type(key)
        if kind == b"string":
            value: Any = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = sorted(client.smembers(key))
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = None
        out[key] = (kind, value, client.ttl(key) > 0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scripts", type=Path, help="a directory of changed <name>.lua files")
    parser.add_argument(
        "--module",
        action="store_true",
        help="also run the scripts the Redis module has as its commands (and compare)",
    )
    args = parser.parse_args()
    logging.getLogger("bestand").setLevel(logging.ERROR)
    calls, events, settings = record(args.persons)
    names = sorted({name for name, _, _ in calls})
    shipped = {name: script_module.Script.named(name).source for name in names}
    variants = [("shipped", shipped)]
    if args.scripts:
        changed = {
            name: (args.scripts / f"{name}.lua").read_text("utf-8")
            for name in names
            if (args.scripts / f"{name}.lua").exists()
        }
        variants.append((str(args.scripts), shipped | changed))
    client = redis.Redis.from_url(Settings().redis_url)
    compiled: frozenset[str] = frozenset()
    if args.module:
        compiled = frozenset(n for n in names if has_command(client, f"bestand.{n}"))
        if not compiled:
            print("this Redis has no bestand module loaded (redis-server --loadmodule)")
            return 2
        compare(client, calls, settings, shipped, compiled)
    print(f"{len(calls)} script calls over {events} events of a {args.persons}-person shop")
    print("| round | scripts | " + " | ".join(names) + " | all |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for round_number in range(1, args.rounds + 1):
        for label, sources in variants:
            spent = replay(client, calls, settings, sources)
            cells = [f"{spent[name] / events:.1f}" for name in names]
            total = sum(spent.values()) / events
            print(f"| {round_number} | {label} | " + " | ".join(cells) + f" | {total:.1f} |")
        if compiled:
            spent = replay(client, calls, settings, shipped, compiled)
            cells = [f"{spent[name] / events:.1f}" for name in names]
            total = sum(spent.values()) / events
            print(f"| {round_number} | module | " + " | ".join(cells) + f" | {total:.1f} |")
    print("(µs of Redis time per event)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
