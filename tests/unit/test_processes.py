"""The pure helpers of bestand.stack: pid files, ports, processes, cluster ids, settings."""

from __future__ import annotations

import base64
import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest

from bestand.settings import Settings
from bestand.stack import (
    LocalRedis,
    LocalStack,
    StackError,
    find_project_dir,
    free_port,
    free_ports,
    kafka_port_from_bootstrap,
    new_cluster_id,
    redis_port_from_url,
)
from bestand.stack.kafka import render_server_properties
from bestand.stack.processes import (
    exit_code,
    pid_alive,
    port_bindable,
    port_open,
    process_cmdline,
    read_pid,
    remove_pid,
    start_detached,
    tail,
    terminate,
    write_pid,
)

# --- pid files -------------------------------------------------------------------------------


def test_pid_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.pid"
    write_pid(path, 4242)
    assert read_pid(path) == 4242
    assert path.read_text() == "4242\n"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    remove_pid(path)
    assert not path.exists()
    remove_pid(path)  # removing twice is fine


@pytest.mark.parametrize("content", ["", "abc", "-5", "0", "12 34", "\xff"])
def test_read_pid_refuses_what_is_not_a_pid(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.pid"
    path.write_text(content, encoding="latin-1")
    assert read_pid(path) is None


def test_read_pid_of_missing_file(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "missing.pid") is None


@pytest.mark.parametrize("pid", [0, -1])
def test_write_pid_refuses_non_positive(tmp_path: Path, pid: int) -> None:
    with pytest.raises(ValueError, match="not a pid"):
        write_pid(tmp_path / "x.pid", pid)


# --- ports -----------------------------------------------------------------------------------


def test_free_port_is_free() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    assert port_bindable(port)
    assert not port_open(port)


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(port_bindable(port) for port in ports)


def test_port_open_and_bindable_see_a_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_open(port)
        assert not port_bindable(port)


# --- processes -------------------------------------------------------------------------------


def test_pid_alive_for_this_process_and_not_for_an_ended_one(tmp_path: Path) -> None:
    assert pid_alive(os.getpid())
    pid = start_detached(["true"], log_file=tmp_path / "true.log")
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)  # ended, and not mistaken for alive while a zombie
    terminate(pid)  # reaps it; nothing to signal


def test_start_detached_logs_and_terminate_stops(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "sleep.log"
    pid = start_detached(
        ["sh", "-c", "echo started; echo oops >&2; exec sleep 30"], log_file=log_file
    )
    try:
        assert pid_alive(pid)
        assert os.getpgid(pid) == pid  # own session and process group
        deadline = time.monotonic() + 10
        while "oops" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log_file.read_text().split() == ["started", "oops"]
        cmdline = process_cmdline(pid)
        assert cmdline is not None
        assert "sleep 30" in cmdline
    finally:
        killed = terminate(pid, timeout=5)
    assert not killed
    assert not pid_alive(pid)


def test_terminate_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    log_file = tmp_path / "stubborn.log"
    pid = start_detached(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"], log_file=log_file
    )
    deadline = time.monotonic() + 10
    while "ready" not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    began = time.monotonic()
    assert terminate(pid, timeout=0.3)
    assert not pid_alive(pid)
    assert time.monotonic() - began < 5


def test_start_detached_runs_in_cwd_and_reports_the_exit_code(tmp_path: Path) -> None:
    log_file = tmp_path / "pwd.log"
    pid = start_detached(["sh", "-c", "pwd; exit 7"], log_file=log_file, cwd=tmp_path)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exit_code(pid) == 7
    assert log_file.read_text().strip() == str(tmp_path)


@pytest.mark.parametrize("in_folder", [False, True])
def test_start_detached_of_missing_binary_is_a_stack_error(tmp_path: Path, in_folder: bool) -> None:
    with pytest.raises(StackError, match="cannot start"):
        start_detached(
            [str(tmp_path / "no-such-binary")],
            log_file=tmp_path / "x.log",
            cwd=tmp_path if in_folder else None,
        )


def test_tail_gives_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {n}\n" for n in range(100)))
    assert tail(path, 3) == "line 97\nline 98\nline 99"
    assert "cannot read" in tail(tmp_path / "missing.log")


# --- kafka -----------------------------------------------------------------------------------


def test_cluster_id_format() -> None:
    ids = {new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cluster_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), cluster_id
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_server_properties_make_a_single_node_kraft_cluster(tmp_path: Path) -> None:
    text = render_server_properties(port=19092, controller_port=19093, data_dir=tmp_path)
    props = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path)
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_extra_properties_replace_or_add_lines(tmp_path: Path) -> None:
    secured = "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094"
    extra = {"advertised.listeners": secured, "sasl.enabled.mechanisms": "PLAIN"}
    text = render_server_properties(
        port=19092, controller_port=19093, data_dir=tmp_path, extra=extra
    )
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert [line for line in lines if line.startswith("advertised.listeners=")] == [
        f"advertised.listeners={secured}"
    ]
    assert "sasl.enabled.mechanisms=PLAIN" in lines
    assert "process.roles=broker,controller" in lines  # the rest stays


# --- configuration ---------------------------------------------------------------------------


def test_from_settings_takes_ports_and_folder(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap="localhost:19092,127.0.0.1:19094",
        redis_url="redis://127.0.0.1:16380/3",
        stack_dir=tmp_path / "stack",
    )
    stack = LocalStack.from_settings(settings, log=lambda _msg: None)
    assert stack.kafka_bootstrap == "127.0.0.1:19092"
    assert stack.redis_url == "redis://127.0.0.1:16380/0"
    assert stack.root == tmp_path / "stack"
    assert not (tmp_path / "stack").exists()  # constructing touches nothing


@pytest.mark.parametrize(
    ("bootstrap", "port"),
    [("127.0.0.1:9092", 9092), ("localhost:9095, other:1", 9095), ("kafka://127.0.0.1:9", 9)],
)
def test_kafka_port_from_bootstrap(bootstrap: str, port: int) -> None:
    assert kafka_port_from_bootstrap(bootstrap) == port


@pytest.mark.parametrize("bootstrap", ["kafka.example:9092", "127.0.0.1", "127.0.0.1:x", ":0"])
def test_kafka_port_from_bootstrap_refuses(bootstrap: str) -> None:
    with pytest.raises(StackError):
        kafka_port_from_bootstrap(bootstrap)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("redis://127.0.0.1:6380/0", 6380),
        ("redis://localhost", 6379),
        ("redis://:pw@localhost:7/1", 7),
    ],
)
def test_redis_port_from_url(url: str, port: int) -> None:
    assert redis_port_from_url(url) == port


@pytest.mark.parametrize(
    "url", ["rediss://127.0.0.1:6380", "redis://cache.example:6379/0", "unix:///tmp/r.sock"]
)
def test_redis_port_from_url_refuses(url: str) -> None:
    with pytest.raises(StackError):
        redis_port_from_url(url)


def test_find_project_dir_finds_this_checkout() -> None:
    here = Path(__file__).resolve()
    assert find_project_dir(here.parent) == here.parents[2]


# --- stack bookkeeping without servers -------------------------------------------------------


def test_a_stack_never_started_is_stopped_and_down_touches_nothing(tmp_path: Path) -> None:
    messages: list[str] = []
    root = tmp_path / "never"
    stack = LocalStack(root, kafka_port=free_port(), redis_port=free_port(), log=messages.append)
    statuses = stack.status()
    assert [s.name for s in statuses] == ["Kafka", "Redis"]
    for status in statuses:
        assert (status.managed, status.running, status.answering, status.pid) == (
            False,
            False,
            False,
            None,
        )
        assert status.detail == "stopped"
    stack.down()
    assert not root.exists()
    assert messages == [f"nothing to stop: {root} does not exist"]


def test_a_pid_file_naming_another_process_is_not_ours(tmp_path: Path) -> None:
    """A pid reused after a reboot must never be stopped: here it is the test itself."""
    messages: list[str] = []
    server = LocalRedis(tmp_path, port=free_port(), log=messages.append)
    write_pid(server.pid_file, os.getpid())
    assert server.managed_pid() is None
    assert not server.status().managed
    assert server.stop() is False  # and we are still alive to check it
    assert not server.pid_file.exists()
    assert messages == ["Redis was not running (removed its stale pid file)"]


def test_a_pid_file_of_an_ended_process_is_stale(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path, port=free_port(), log=lambda _msg: None)
    pid = start_detached([sys.executable, "-c", "pass"], log_file=tmp_path / "x.log")
    terminate(pid, timeout=10)  # waits for the short-lived process and reaps it
    write_pid(server.pid_file, pid)
    assert server.managed_pid() is None
    assert server.status().detail == "stopped"
