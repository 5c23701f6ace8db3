"""Graph entries and facts as fields of bucket hashes: every place names them the same way."""

from __future__ import annotations

import string

import bestand_native
from hypothesis import given
from hypothesis import strategies as st

from bestand.identity.keyed import IdentityKeyer
from bestand.identity.kinds import IdKind
from bestand.store.keys import (
    BUCKET_CHARS,
    Keys,
    bucket_field,
    facts_pairs,
    packed_facts,
    token_of,
)

B64 = string.ascii_letters + string.digits + "-_"


def test_the_compiled_core_buckets_by_as_many_characters() -> None:
    assert bestand_native.BUCKET_CHARS == BUCKET_CHARS
    assert b'"bucket_chars":%d' % BUCKET_CHARS in Keys("b").graph_schema
    assert b'"bucket_chars":%d' % BUCKET_CHARS in Keys("b").person_schema


def test_a_keyed_identifier_is_its_bucket_and_the_rest_of_its_hash() -> None:
    keys = Keys("b")
    token = IdentityKeyer(b"k" * 32, "DE").key(IdKind.EMAIL, "anna@example.com").token
    bucket, field = keys.entry(token)
    assert bucket == "b:{g}:i:" + token[2 : 2 + BUCKET_CHARS]
    assert field == "e:" + token[2 + BUCKET_CHARS :]
    assert len(field) == len(token) - BUCKET_CHARS
    assert token_of(bucket.removeprefix(keys.buckets), field) == token


@given(st.sampled_from("ecpdoah"), st.text(B64, min_size=BUCKET_CHARS, max_size=30))
def test_bucket_and_field_give_the_token_back(kind: str, digest: str) -> None:
    token = f"{kind}:{digest}"
    bucket = Keys("b").identifier(token).removeprefix(Keys("b").buckets)
    assert token_of(bucket, bucket_field(token)) == token


def test_tokens_of_one_bucket_keep_fields_of_their_own() -> None:
    """Two identifiers never share a field of one bucket, even of another kind."""
    tokens = ["e:abcXYZ", "p:abcXYZ", "e:abcXYz", "e:abdXYZ", "e:ab", "e:a"]
    entries = {Keys("b").entry(t) for t in tokens}
    assert len(entries) == len(tokens)


_NAMES = st.one_of(
    st.sampled_from("vecpdoah"),
    st.builds(lambda k, d: f"{k}:{d}", st.sampled_from("ecpnh"), st.text(B64, min_size=1)),
    st.builds(lambda k, d: f"@{k}:{d}", st.sampled_from("cd"), st.text(B64, min_size=1)),
)


@given(st.lists(st.tuples(_NAMES, st.sampled_from(["", "1", "7", "-2", "1785193582"]))))
def test_a_persons_facts_read_back_in_their_order(facts: list[tuple[str, str]]) -> None:
    pairs = list(dict(facts).items())  # a name once, as in a hash
    stored = [p for p in pairs if p[0] == "v"] + [p for p in pairs if p[0] != "v"]
    assert facts_pairs(packed_facts(pairs)) == stored  # the version first, the rest in order
    assert facts_pairs(packed_facts(pairs).encode()) == stored


def test_a_persons_facts_are_one_field_of_its_bucket() -> None:
    keys = Keys("b")
    assert keys.facts("Zq3-person01") == "b:{g}:k:" + "Zq3-person01"[:BUCKET_CHARS]
    packed = packed_facts([("e:abc", ""), ("e", "1"), ("v", "3"), ("n:xyz", "1")])
    assert packed == "v\x1f3\x1ee:abc\x1f\x1ee\x1f1\x1en:xyz\x1f1"  # the version first
    assert facts_pairs(None) == []
