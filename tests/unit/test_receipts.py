"""Receipts: a redelivered event that merged persons or flagged junk gets the same answer."""

from __future__ import annotations

import hashlib

import orjson

from bestand.identity.rules import Decision, GraphView, LogEntry, Unattributable
from bestand.store.identity_graph import _from_receipt, _receipt
from bestand.store.keys import Keys, receipt_suffix


def _decision(**changes: object) -> Decision:
    fields: dict[str, object] = {
        "person": "p-survivor", "absorbed": ("p-gone",), "attach": ("e:new",), "describe": (),
        "met": (), "junk": (("e:dummy", "shared by 12 persons"),),
        "log": (LogEntry("merge", ("e:x",), "same e-mail"),), "identifiers": ("e:x", "c:1"),
        "ignored": ("e:dummy",),
    }  # fmt: skip
    fields.update(changes)
    return Decision(**fields)  # type: ignore[arg-type]


def test_a_merge_comes_back_with_its_survivor_absorbed_identifiers_and_junk() -> None:
    view = GraphView(owners={"e:dummy": "p-other", "e:x": "p-survivor"})
    body = orjson.dumps(_receipt(_decision(), view, None))
    result = _from_receipt(body)
    assert isinstance(result, tuple)
    decision, again = result
    assert decision.person == "p-survivor"
    assert decision.absorbed == ("p-gone",)
    assert decision.identifiers == ("e:x", "c:1")
    assert decision.junk == (("e:dummy", "shared by 12 persons"),)
    assert dict(again.owners) == {"e:dummy": "p-other"}  # whom to tell to drop the junk
    assert decision.attach == decision.log == ()  # the graph has them already


def test_a_refusal_that_flagged_junk_comes_back_as_the_same_refusal() -> None:
    view = GraphView(owners={"e:dummy": "p-other"})
    decision = _decision(person="p-other", absorbed=(), identifiers=())
    result = _from_receipt(orjson.dumps(_receipt(decision, view, "all identifiers are junk")))
    assert isinstance(result, Unattributable)
    assert str(result) == "all identifiers are junk"
    assert result.junk == (("e:dummy", "shared by 12 persons"),)
    assert result.owners == {"e:dummy": "p-other"}


def test_receipt_keys_take_short_ids_as_they_are_and_long_ones_as_sha1() -> None:
    keys = Keys("b")
    assert keys.receipt("ev-1") == "b:{g}:e:ev-1"
    long_id = "x" * 65
    suffix = receipt_suffix(long_id)
    assert suffix == hashlib.sha1(long_id.encode()).hexdigest()  # noqa: S324 - as erase.lua
    assert keys.receipt(long_id) == f"b:{{g}}:e:{suffix}"
