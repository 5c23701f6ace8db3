"""Redis's time per Lua script and event: the worker's script calls, recorded and replayed.

The batch processor runs in-process over a simulated shop (as ``bench/stages.py`` does) and
every script call it makes is recorded; the calls are then replayed in order on an emptied
key prefix, each call's time read from Redis's ``SLOWLOG`` (the time inside Redis, without
the network or the client). The replay repeats exactly the writes of the first run, so a
script changed in ``--scripts DIR`` (same arguments, another body) can be timed against the
shipped one on the same history: reads are free to change, writes must stay equivalent.

    python bench/script_costs.py --persons 8000 [--rounds 2] [--scripts DIR]

Prints µs of Redis time per event for each script, per round (rounds alternate the shipped
scripts and ``--scripts``, when given). Uses its own key prefix and removes it; sets
``slowlog-log-slower-than`` for the replay and puts it back.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
    client: redis.Redis, calls: list[Call], settings: Settings, sources: dict[str, str]
) -> Counter[str]:
    """Microseconds inside Redis per script over the calls, replayed in order on the
    settings' key prefix (empty before, emptied after)."""
    shas = {name: client.script_load(source) for name, source in sources.items()}
    spent: Counter[str] = Counter()
    before = client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    # Scripts take milliseconds, the commands they call microseconds: only scripts are logged.
    client.config_set("slowlog-log-slower-than", 100)
    try:
        client.slowlog_reset()
        for n, (name, keys, args) in enumerate(calls):
            client.execute_command("EVALSHA", shas[name], len(keys), *keys, *args)
            entry = client.slowlog_get(1)
            if entry and entry[0]["command"].split()[0].lower() == b"evalsha":
                spent[name] += entry[0]["duration"]
            if n % 200 == 0:
                client.slowlog_reset()
    finally:
        client.config_set("slowlog-log-slower-than", before)
        asyncio.run(clear(settings))
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scripts", type=Path, help="a directory of changed <name>.lua files")
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
    print(f"{len(calls)} script calls over {events} events of a {args.persons}-person shop")
    print("| round | scripts | " + " | ".join(names) + " | all |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for round_number in range(1, args.rounds + 1):
        for label, sources in variants:
            spent = replay(client, calls, settings, sources)
            cells = [f"{spent[name] / events:.1f}" for name in names]
            total = sum(spent.values()) / events
            print(f"| {round_number} | {label} | " + " | ".join(cells) + f" | {total:.1f} |")
    print("(µs of Redis time per event)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
