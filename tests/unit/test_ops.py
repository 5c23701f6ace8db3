"""Operations: metric names, dashboard and alert rules against what the code exports,
heartbeats and readiness, lag arithmetic. promtool (Debian's prometheus package, installed by
``deploy/local/install-promtool.sh``) checks the rules and the exposition format."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from bestand.api.app import endpoint_of
from bestand.kafka.lag import PartitionLag, max_age, partition_lags, total_lag
from bestand.ops.census import kind_of
from bestand.ops.heartbeat import Heartbeat, is_ready, ttl_seconds, verdict
from bestand.ops.logs import JsonFormatter, bound, logging_config
from bestand.ops.metrics import ApiMetrics, WorkerMetrics, observe_many
from bestand.store import Keys

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bestand.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bbestand_[a-z_]+")


def _sample_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can expose (counters end in _total, histograms in
    _bucket, _count and _sum)."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum", "created")}
        else:
            names.add(family.name)
    return names


EXPORTED = _sample_names(WorkerMetrics().registry) | _sample_names(ApiMetrics().registry)


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: run deploy/local/install-promtool.sh (make test does)")
    return found


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_every_dashboard_panel_queries_metrics_the_code_exports() -> None:
    exprs = _dashboard_exprs()
    assert exprs
    for title, expr in exprs:
        used = set(METRIC.findall(expr))
        assert used, f"panel {title!r} queries no bestand metric"
        assert used <= EXPORTED, f"panel {title!r} queries unknown {sorted(used - EXPORTED)}"


def test_the_dashboard_shows_what_ops_watch() -> None:
    used = {name for _, expr in _dashboard_exprs() for name in METRIC.findall(expr)}
    for needed in (
        "bestand_consumer_lag_messages",  # lag per partition
        "bestand_events_consumed_total",  # throughput
        "bestand_dead_letters_total",  # DLQ rate
        "bestand_event_age_seconds_bucket",  # event age
        "bestand_http_request_duration_seconds_bucket",  # lookup p99
        "bestand_redis_used_memory_bytes",  # Redis memory
    ):
        assert needed in used
    lag = next(e for t, e in _dashboard_exprs() if "bestand_consumer_lag_messages" in e)
    assert "partition" in lag


def test_alert_rules_use_exported_metrics() -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {
        "BestandConsumerLagGrowing",
        "BestandDeadLetters",
        "BestandWorkerHeartbeatMissing",
        "BestandLookupLatencyOverBudget",
    } <= names
    for rule in rules:
        used = set(METRIC.findall(rule["expr"]))
        assert used <= EXPORTED, f"{rule['alert']} uses unknown {sorted(used - EXPORTED)}"


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    promtool = _promtool()
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


def _samples(metrics: WorkerMetrics, name: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in metrics.registry.collect()
        if family.name == name
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_observe_many_counts_as_observe_one_at_a_time() -> None:
    """Bucket edges (an amount equal to a bound counts in that bucket), beyond the last bound,
    zero, unsorted input and repeats: every bucket, the count and the sum agree."""
    amounts = [0.0, 0.01, 0.010001, 0.2, 0.05, 7.5, 86400.0, 90000.0, 0.25, 0.25, 3.0, 0.009]
    one, many = WorkerMetrics(), WorkerMetrics()
    for amount in amounts:
        one.event_age.observe(amount)
    observe_many(many.event_age, amounts)
    observe_many(many.event_age, [])
    expected = _samples(one, "bestand_event_age_seconds")
    assert expected[("bestand_event_age_seconds_count", "")] == len(amounts)
    assert expected[("bestand_event_age_seconds_bucket", "0.01")] == 3
    assert _samples(many, "bestand_event_age_seconds") == pytest.approx(expected)


def test_promtool_accepts_the_exposition_of_worker_and_api() -> None:
    worker, api = WorkerMetrics(), ApiMetrics()
    worker.events.labels("bestand.orders", "processed").inc(3)
    worker.consumed.labels("bestand.orders").inc(3)
    worker.lag.labels("bestand.orders", "0").set(12)
    worker.event_age.observe(0.2)
    worker.processing_seconds.labels("resolve").observe(0.01)
    worker.rebalances.inc()
    worker.partitions.set(4)
    worker.heartbeat.set(1_700_000_000)
    api.requests.labels("lookup", "200").observe(0.0004)
    for text in (worker.exposition(), api.exposition()):
        checked = subprocess.run(
            [_promtool(), "check", "metrics"], input=text, capture_output=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout + checked.stderr == b"", (checked.stdout + checked.stderr).decode()


def test_endpoint_labels_are_routes_not_paths() -> None:
    assert endpoint_of("/v1/lookup", "GET") == "lookup"
    assert endpoint_of("/v1/lookup", "POST") == "lookup_batch"
    assert endpoint_of("/v1/persons/P123/explain", "GET") == "explain"
    assert endpoint_of("/v1/orders/A-1/classification", "GET") == "classification"
    assert endpoint_of("/v1/orders/classification", "POST") == "classification_batch"
    assert endpoint_of("/metrics", "GET") == "metrics"
    assert endpoint_of("/wp-admin/../../etc/passwd", "GET") == "other"


def test_lag_per_partition() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    rows = partition_lags({a1: 10, a0: 7, b0: 5}, {a0: 7, a1: 4, b0: -1})
    assert [(r.topic, r.partition, r.lag) for r in rows] == [("a", 0, 0), ("a", 1, 6), ("b", 0, 5)]
    assert rows[2].committed is None  # never committed: everything waits
    assert total_lag(rows) == 11


def test_lag_age_is_the_oldest_waiting_message() -> None:
    waiting = PartitionLag("a", 0, end=10, committed=4, oldest_at=100.0)
    caught_up = PartitionLag("a", 1, end=10, committed=10, oldest_at=50.0)
    assert waiting.age(130.0) == 30.0
    assert caught_up.age(130.0) == 0.0
    assert max_age([waiting, caught_up], now=160.0) == 60.0
    assert max_age([], now=1.0) == 0.0


def test_readiness_needs_partitions_and_a_small_lag() -> None:
    assert is_ready(partitions=2, lag=10, max_lag=1000)
    assert not is_ready(partitions=0, lag=0, max_lag=1000)  # not (yet) in the group
    assert not is_ready(partitions=2, lag=5000, max_lag=1000)  # catching up
    assert not is_ready(partitions=2, lag=None, max_lag=1000)  # Kafka did not answer


def test_heartbeats_round_trip_and_decide_probes() -> None:
    beat = Heartbeat("host-1", 1700000000.5, partitions=3, lag=0, ready=True)
    assert Heartbeat.loads(beat.dumps()) == beat
    busy = Heartbeat("host-2", 1700000000.5, partitions=3, lag=9000, ready=False)
    assert verdict([], need_ready=False) == (
        False,
        "no worker heartbeat in Redis (no worker alive, or it stopped beating)",
    )
    assert verdict([busy], need_ready=False)[0]
    ok, why = verdict([busy], need_ready=True)
    assert not ok
    assert "9000" in why
    assert verdict([busy, beat], need_ready=True) == (True, "1 of 2 worker(s) ready")
    assert ttl_seconds(5) == 15
    assert ttl_seconds(0.1) == 1


def test_json_log_lines_carry_the_fields_bound_for_the_work_in_hand() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("bestand.stream", logging.WARNING, __file__, 1, "x %s", ("y",), None)
    with bound(topic="bestand.orders", partition=2, offset=41), bound(person_id="P1"):
        line = json.loads(formatter.format(record))
    assert line["message"] == "x y"
    assert line["level"] == "warning"
    assert (line["topic"], line["partition"], line["offset"], line["person_id"]) == (
        "bestand.orders", 2, 41, "P1",
    )  # fmt: skip
    outside = json.loads(formatter.format(record))
    assert "topic" not in outside  # the binding ended with its block
    error = ValueError("boom")
    failed = logging.LogRecord(
        "b", logging.ERROR, __file__, 1, "failed", (), (ValueError, error, None)
    )
    failed.fields = {"offset": 7}
    data = json.loads(formatter.format(failed))
    assert data["offset"] == 7
    assert "ValueError: boom" in data["error"]


def test_the_log_config_picks_the_format() -> None:
    assert logging_config("json")["formatters"]["bestand"] == {"()": JsonFormatter}
    assert "format" in logging_config("text", "warning")["formatters"]["bestand"]
    assert logging_config("text", "warning")["root"]["level"] == "WARNING"


def test_the_census_counts_person_sets_and_graph_entries_only() -> None:
    keys = Keys("b")
    assert kind_of(keys.facts("P1"), keys) == "person"
    assert kind_of(keys.identifier("e:abcdef").encode(), keys) == "identifier"
    assert kind_of(keys.merge_log("P1"), keys) is None
    assert kind_of(keys.lookup("email:abc"), keys) is None
    assert kind_of(Keys("other").identifier("e:abcdef"), keys) is None


def test_status_says_when_the_store_holds_another_layout() -> None:
    from bestand.store.layout import LAYOUT, layout_note

    assert layout_note(None) is None  # not marked yet: a worker marks an empty store
    assert layout_note(str(LAYOUT).encode()) is None
    assert layout_note(b"3") is None  # read as it is, marked anew when a worker starts
    note = layout_note(b"2")
    assert note is not None
    assert "marked layout 2" in note
    assert "bestand rebuild" in note
