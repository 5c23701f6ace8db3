"""Person writes on a Redis Cluster that keep to slots (:class:`ClusterProfileStore`).

The identity graph lives under one hash tag (``{g}``), so its scripts run unchanged on the
master that holds that slot, through a plain connection to it (and as the module's commands
where that master has it). A person's state and its dedupe markers share its person bucket's
hash tag, so a person is compare-and-set in one slot; its lookup records and the value set
lie in other slots and are written after it (``cluster_lookups.lua``), one call per master.

A batch's merge may join persons of several slots. Their write goes in three steps, each a
compare-and-set per master (``cluster_persons.lua``): the absorbed persons become redirects
that keep their last state (``r<survivor>\\x1f<value>``), the survivor is written with their
states folded in (its state names them as absorbed), and then the kept states are dropped.
Any other batch follows such a redirect like any other; the batch that merges the person (a
try again after a changed guard, or the redelivery after a worker died in between) folds the
kept state (a no-op where the survivor holds it already) and writes the steps again.

What a cluster gives up against one Redis, all of it in the README: a lookup record is written
a moment after its person (a lookup in between answers the person's previous state), and a
cookie's record is checked against the graph's owner when the batch writes it, not in the
same script.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError

from bestand.events import ResolvedEvent
from bestand.identity.kinds import MOVABLE
from bestand.profile import dump_state
from bestand.profile.fold import GroupWrite, Loaded
from bestand.profile.state import CustomerRule
from bestand.store.errors import StoreConflict
from bestand.store.keys import BUCKET_CHARS, Keys
from bestand.store.profiles import FoldChoice, ProfileStore
from bestand.store.router import Node, Router, cross_slot, key_bytes, run_script
from bestand.store.scripts import Script, Scripts

log = logging.getLogger(__name__)

#: Replies that say the cluster's slots moved or are moving: the batch is tried again once
#: the slot map is read again.
_RESHARDED = (MovedError, AskError, ClusterDownError, TryAgainError)


@dataclass
class _Item:
    """One compare-and-set of a group's persons on one master."""

    group: int
    node: Node
    guard: list[tuple[str, int]] = field(default_factory=list)
    write: list[tuple[str, int, bytes]] = field(default_factory=list)
    absorbed: list[tuple[str, str]] = field(default_factory=list)
    markers: list[tuple[str, str]] = field(default_factory=list)
    keys: dict[str, None] = field(default_factory=dict)


class ClusterProfileStore(ProfileStore):
    """:class:`ProfileStore` on a Redis Cluster (the Python fold; the compiled one packs one
    call for every slot of a batch)."""

    def __init__(
        self,
        router: Router,
        keys: Keys,
        dedupe_ttl: int,
        scripts: Scripts | None = None,
        rule: CustomerRule = "kept",
        fold: FoldChoice = "python",
    ) -> None:
        del fold  # the compiled fold writes for one Redis
        del scripts  # the module's commands run on one Redis: the scripts run here
        super().__init__(cast(Redis, router.cluster), keys, dedupe_ttl, Scripts.load(), rule)
        self._router = router
        self._read_script = cross_slot(Script.named("cluster_read"))
        self._persons_script = cross_slot(Script.named("cluster_persons"))
        self._lookups_script = cross_slot(Script.named("cluster_lookups"))

    async def apply_batch(self, events: Sequence[ResolvedEvent], *args: Any, **kwargs: Any) -> Any:
        """:meth:`ProfileStore.apply_batch`; a slot that moved is read again as a conflict."""
        try:
            return await super().apply_batch(events, *args, **kwargs)
        except _RESHARDED as error:
            await self._router.refresh()
            raise StoreConflict(f"the cluster's slots moved: {error}") from error

    async def _read_keys(
        self, names: Sequence[str], marker_keys: Sequence[str]
    ) -> tuple[list[list[Any]], list[bytes | str]]:
        """``persons_read`` on every master that holds some of these keys, at once."""
        router = self._router
        person_nodes = [router.node_of(self._keys.person(p)) for p in names]
        marker_nodes = [router.node_of(key) for key in marker_keys]
        nodes = list(dict.fromkeys([*person_nodes, *marker_nodes]))

        async def on(node: Node) -> tuple[list[int], list[int], Any]:
            mine = [i for i, n in enumerate(person_nodes) if n == node]
            marks = [i for i, n in enumerate(marker_nodes) if n == node]
            ids = [names[i] for i in mine]
            keys = [self._keys.person(p) for p in ids] + [marker_keys[i] for i in marks]
            known = [self._remembered.version(p) for p in ids]
            reply = await run_script(
                router.client(node), self._read_script, keys, [len(ids), *known, *ids]
            )
            return mine, marks, reply

        rows: list[list[Any]] = [[] for _ in names]
        markers: list[bytes | str] = [b"" for _ in marker_keys]
        for mine, marks, (got_rows, got_markers) in await asyncio.gather(*map(on, nodes)):
            for i, row in zip(mine, got_rows, strict=True):
                rows[i] = row
            for i, marker in zip(marks, got_markers, strict=True):
                markers[i] = marker
        return rows, markers

    async def _read(
        self, batch: Sequence[ResolvedEvent]
    ) -> tuple[dict[str, Loaded], dict[int, str]]:
        """:meth:`ProfileStore._read`; a redirect that kept a state is, to the batch that
        merges that person (tried again, or delivered again after a worker died), the person
        it was: the batch folds it in (a no-op where the survivor holds it already, since
        merging a person twice changes nothing) and writes the merge's steps again, which
        drop the kept state. Any other batch follows the redirect."""
        persons, found = await super()._read(batch)
        merging = {gone for event in batch for gone in event.absorbed}
        for person, loaded in persons.items():
            if loaded.kept is not None and person in merging:
                persons[person] = Loaded(None, loaded.kept)
        return persons, found

    async def _write(self, writes: Sequence[GroupWrite]) -> list[bool]:
        """Write every group: persons first (in steps where a group spans slots), then the
        lookup records of the groups written."""
        result = [True] * len(writes)
        keeps: list[_Item] = []
        items: list[_Item] = []
        drops: list[_Item] = []
        for n, write in enumerate(writes):
            if write.empty:
                continue
            main = self._main_person(write)
            if main is None:
                continue  # records only (written again after a redelivery)
            k, w, d = self._items(n, write, main)
            keeps += k
            items += w
            drops += d
        failed: set[int] = set()
        for group, ok in await self._run_items("keep", keeps):
            if not ok:
                failed.add(group)
        for group, ok in await self._run_items(
            "write", [i for i in items if i.group not in failed]
        ):
            if not ok:
                failed.add(group)
        await self._run_items("drop", [i for i in drops if i.group not in failed])
        for group in failed:
            result[group] = False
        await self._publish([w for n, w in enumerate(writes) if result[n] and not w.empty])
        return result

    def _main_person(self, write: GroupWrite) -> str | None:
        """The person whose slot takes a group's states and markers."""
        if write.states:
            return write.states[0].person_id
        if write.markers:
            return write.markers[0][0]
        if write.guard:
            return write.guard[0][0]
        return None

    def _items(
        self, group: int, write: GroupWrite, main: str
    ) -> tuple[list[_Item], list[_Item], list[_Item]]:
        """A group's compare-and-sets: keep (absorbed persons in other slots than ``main``'s),
        write (a slot's states, redirects and markers) and drop (the kept states, after)."""
        keys, router = self._keys, self._router
        if not write.absorbed:  # the common case: one person, one slot
            key = keys.person(main)
            item = _Item(group, router.node_of(key), keys={key: None})
            item.guard = list(write.guard)
            for state in write.states:
                item.write.append((state.person_id, state.version, dump_state(state)))
                item.keys[keys.person(state.person_id)] = None
            for person, event, text in write.markers:
                marker = keys.dedupe(person, event)
                item.markers.append((marker, text))
                item.keys[marker] = None
            tag = main[:BUCKET_CHARS]  # a person's bucket and markers share its tag
            persons = [p for p, _ in write.guard] + [p for p, _, _ in write.markers]
            if all(p[:BUCKET_CHARS] == tag for p in persons):
                return [], [item], []
        slot = key_slot(key_bytes(keys.person(main)))

        def slot_of(person: str) -> int:
            return key_slot(key_bytes(keys.person(person)))

        guards = dict(write.guard)
        writes: dict[int, _Item] = {}

        def item_for(person: str) -> _Item:
            at = slot_of(person)
            if at not in writes:
                writes[at] = _Item(group, router.node_of(keys.person(person)))
            return writes[at]

        keeps: dict[int, _Item] = {}
        drops: list[_Item] = []
        away = {gone for gone, _ in write.absorbed if slot_of(gone) != slot}
        for gone, survivor in write.absorbed:
            if gone in away:
                at = slot_of(gone)
                if at not in keeps:
                    keeps[at] = _Item(group, router.node_of(keys.person(gone)))
                item = keeps[at]
                item.absorbed.append((gone, survivor))
                item.keys[keys.person(gone)] = None
                drops.append(self._drop_item(group, gone, survivor))
            else:
                item = item_for(gone)
                item.absorbed.append((gone, survivor))
                item.keys[keys.person(gone)] = None
        for person, version in guards.items():
            item = keeps[slot_of(person)] if person in away else item_for(person)
            item.guard.append((person, version))
            item.keys[keys.person(person)] = None
        for state in write.states:
            item = item_for(state.person_id)
            item.write.append((state.person_id, state.version, dump_state(state)))
            item.keys[keys.person(state.person_id)] = None
        # A marker goes with the person written: one on a person the batch merged away later
        # belongs to its survivor (where a redelivery looks, following the redirect).
        survivors = dict(write.absorbed)
        for person, event, text in write.markers:
            while person in survivors:
                person = survivors[person]
            item = item_for(person)
            key = keys.dedupe(person, event)
            item.markers.append((key, text))
            item.keys[key] = None
        if len(writes) > 1:
            log.warning("a group's states lie in %d slots: written one slot at a time", len(writes))
        return list(keeps.values()), list(writes.values()), drops

    def _drop_item(self, group: int, person: str, survivor: str) -> _Item:
        key = self._keys.person(person)
        return _Item(
            group, self._router.node_of(key), absorbed=[(person, survivor)], keys={key: None}
        )

    async def _run_items(self, step: str, items: Sequence[_Item]) -> list[tuple[int, bool]]:
        """Run one step's items, one call per master, all masters at once."""
        by_node: dict[Node, list[_Item]] = defaultdict(list)
        for item in items:
            by_node[item.node].append(item)

        async def on(node: Node, mine: list[_Item]) -> list[tuple[int, bool]]:
            keys: dict[str, None] = {}
            bodies: list[bytes] = []
            blobs: list[bytes] = []
            first = 5 + len(mine)
            for item in mine:
                keys.update(item.keys)
                rows = []
                for person, version, blob in item.write:
                    rows.append([person, version, first + len(blobs)])
                    blobs.append(blob)
                bodies.append(
                    orjson.dumps(
                        {
                            "guard": item.guard,
                            "write": rows,
                            "absorbed": item.absorbed,
                            "markers": item.markers,
                        }
                    )
                )
            args = [self._keys.person_schema, self._ttl, step, len(mine), *bodies, *blobs]
            reply = await run_script(
                self._router.client(node), self._persons_script, list(keys), args
            )
            return [(item.group, ok == 1) for item, ok in zip(mine, reply, strict=True)]

        done = await asyncio.gather(*(on(node, mine) for node, mine in by_node.items()))
        return [pair for part in done for pair in part]

    async def _publish(self, writes: Sequence[GroupWrite]) -> None:
        """The lookup records and unlinked identifiers of the groups written."""
        keys, router = self._keys, self._router
        records = [record for write in writes for record in write.publish if record.tokens]
        movable = sorted({t for r in records for t in r.tokens if t[0] in MOVABLE})
        owner: dict[str, str] = {}
        if movable:
            graph = router.client_of(keys.graph)
            async with graph.pipeline(transaction=False) as pipe:
                for token in movable:
                    pipe.hget(*keys.entry(token))
                replies = await pipe.execute()
            owner = {t: r.decode() for t, r in zip(movable, replies, strict=True) if r is not None}
        work: dict[Node, tuple[list[list[Any]], list[str], list[bytes]]] = defaultdict(
            lambda: ([], [], [])
        )
        for record in records:
            holder = record.state.person_id
            tokens = [t for t in record.tokens if t[0] not in MOVABLE or owner.get(t) == holder]
            packed = record.summary.packed().encode()
            for node, mine in router.by_node(keys.lookup(t) for t in tokens).items():
                held = set(mine)
                lookups, _, blobs = work[node]
                chosen = [t for t in tokens if keys.lookup(t) in held]
                lookups.append([record.state.version, len(blobs), chosen])
                blobs.append(packed)
        for write in writes:
            for token in write.unlink:
                work[router.node_of(keys.lookup(token))][1].append(token)

        async def on(
            node: Node, lookups: list[list[Any]], unlink: list[str], blobs: list[bytes]
        ) -> None:
            tokens = [t for row in lookups for t in row[2]] + unlink
            bucket_keys = list(dict.fromkeys(keys.lookup(t) for t in tokens))
            for row in lookups:
                row[1] += 3  # ARGV index: the schema, the work, then the records
            body = orjson.dumps({"lookups": lookups, "unlink": unlink})
            args = [keys.person_schema, body, *blobs]
            await run_script(router.client(node), self._lookups_script, bucket_keys, args)

        await asyncio.gather(*(on(node, *parts) for node, parts in work.items()))


__all__ = ["ClusterProfileStore"]
