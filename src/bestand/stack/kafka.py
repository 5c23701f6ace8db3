"""A single-node Apache Kafka broker in KRaft mode, run from its Maven jars.

Why not Docker or a tarball: Maven Central is reachable from every machine of the project and
the pom pins the exact version, so ``bestand stack up`` needs only Java 17 and Maven.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient

from bestand.stack.exceptions import StackError
from bestand.stack.processes import (
    LOOPBACK,
    LogFn,
    ServerProcess,
    find_project_dir,
    free_port,
    port_bindable,
    start_detached,
)

__all__ = ["LocalKafka", "kafka_answers", "new_cluster_id", "render_server_properties"]

_T = TypeVar("_T")

_VERSION_RE = re.compile(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>")
_JVM_OPTS = ("-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
_INSTALL_TIMEOUT = 900.0  # a cold Maven download on a slow line
_FORMAT_TIMEOUT = 120.0


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Same shape as Kafka's own ``Uuid.randomUuid()``, which also avoids a leading "-" (it reads
    like a command-line flag) and the all-zero id.
    """
    while True:
        raw = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
        if not raw.startswith("-") and raw.strip("A"):
            return raw


def render_server_properties(
    *, port: int, controller_port: int, data_dir: Path, extra: Mapping[str, str] | None = None
) -> str:
    """server.properties of a one-node cluster that is broker and controller at once.

    ``extra`` replaces or adds properties (a secured listener beside the plain one, say).
    """
    lines = [
        "# Written by bestand.stack on every start: change the code, not this file.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{LOOPBACK}:{controller_port}",
        f"listeners=PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={data_dir}",
        "num.partitions=1",
        "auto.create.topics.enable=true",
        "default.replication.factor=1",
        "min.insync.replicas=1",
        # One node: internal topics cannot have more replicas than that.
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "share.coordinator.state.topic.num.partitions=1",
        # Consumer groups of tests and demos start at once instead of after 3 s.
        "group.initial.rebalance.delay.ms=0",
    ]
    for key, value in (extra or {}).items():
        lines = [line for line in lines if not line.startswith(f"{key}=")]
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


async def _cluster_has_broker(bootstrap: str, request_timeout_ms: int) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="bestand-stack-probe",
        request_timeout_ms=request_timeout_ms,
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return bool(cluster.get("brokers"))


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to the end from sync code, also when this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bestand-stack") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def kafka_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """Does a Kafka broker at ``bootstrap`` answer a metadata request listing a broker?"""

    async def probe() -> bool:
        async with asyncio.timeout(timeout):
            return await _cluster_has_broker(bootstrap, max(int(timeout * 1000), 1))

    try:
        return _run_coroutine(probe)
    except Exception:  # noqa: BLE001 - a probe answers yes or no; any failure is a no
        return False


class LocalKafka(ServerProcess):
    """Kafka 4 (KRaft, no ZooKeeper) as one background JVM on 127.0.0.1.

    Layout under ``root``: ``kafka/libs/`` (jars, or ``libs_dir``), ``kafka/data/``,
    ``kafka/server.properties``, ``kafka/kafka.log``, ``kafka/kafka.pid``.
    """

    name = "Kafka"

    def __init__(
        self,
        root: Path,
        *,
        port: int = 9092,
        controller_port: int | None = None,
        libs_dir: Path | None = None,
        project_dir: Path | None = None,
        log: LogFn = print,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = root.absolute() / "kafka"
        self.extra_properties = dict(extra_properties or {})
        super().__init__(
            port=port,
            pid_file=self.dir / "kafka.pid",
            log_file=self.dir / "kafka.log",
            log=log,
        )
        self.libs_dir = (libs_dir or self.dir / "libs").absolute()
        self.data_dir = self.dir / "data"
        self.properties_file = self.dir / "server.properties"
        self.controller_port = controller_port
        self._project_dir = project_dir

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return self.address

    @property
    def project_dir(self) -> Path:
        """The checkout holding ``deploy/local`` (found on first use: status does not need it)."""
        if self._project_dir is None:
            self._project_dir = find_project_dir()
        return self._project_dir

    @property
    def version(self) -> str:
        """The Kafka version pinned in ``deploy/local/kafka/pom.xml``."""
        pom = self.project_dir / "deploy" / "local" / "kafka" / "pom.xml"
        match = _VERSION_RE.search(pom.read_text(encoding="utf-8"))
        if match is None:
            raise StackError(f"no <kafka.version> in {pom}")
        return match.group(1)

    def is_installed(self) -> bool:
        """Are the jars of the pinned version in ``libs_dir`` (stamp written last)?"""
        stamp = self.libs_dir / "KAFKA_VERSION"
        try:
            installed = stamp.read_text(encoding="utf-8").strip()
        except OSError:
            return False
        return (
            installed == self.version
            and any(self.libs_dir.glob("kafka_2.13-*.jar"))
            and (self.libs_dir / f"kafka-tools-{self.version}.jar").exists()
        )

    def install(self) -> None:
        """Fetch the broker jars with Maven unless they are there (install-kafka.sh)."""
        if self.is_installed():
            return
        script = self.project_dir / "deploy" / "local" / "install-kafka.sh"
        self._log(f"installing Kafka {self.version} jars via Maven (first run only, ~30 s)…")
        began = time.monotonic()
        try:
            done = subprocess.run(
                ["bash", str(script), str(self.libs_dir)],
                capture_output=True,
                text=True,
                timeout=_INSTALL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"{script} failed: {exc}") from exc
        if done.returncode != 0 or not self.is_installed():
            output = (done.stdout + done.stderr).strip()
            raise StackError(f"{script} failed (exit code {done.returncode}):\n{output}")
        self._log(f"Kafka jars installed in {time.monotonic() - began:.1f} s")

    def is_answering(self) -> bool:
        """A metadata request through aiokafka's admin client lists a broker."""
        return kafka_answers(self.bootstrap)

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise StackError(
                "java not found on PATH; Kafka needs Java 17 or newer "
                "(Debian: apt-get install -y openjdk-17-jre-headless)"
            )
        return java

    def _log4j_opts(self) -> list[str]:
        config = self.project_dir / "deploy" / "local" / "log4j2.properties"
        return [f"-Dlog4j2.configurationFile={config}", f"-Dbestand.kafka.log={self.log_file}"]

    def _resolved_controller_port(self) -> int:
        if self.controller_port is not None:
            return self.controller_port
        # The conventional neighbour (9093 for 9092) when it is free, else any free port.
        neighbour = self.port + 1
        if neighbour <= 65535 and port_bindable(neighbour, self.host):
            return neighbour
        return free_port(self.host)

    def _other_ports(self) -> dict[int, str]:
        if self.controller_port is None:
            return {}
        return {self.controller_port: "Kafka controller"}

    def running_port(self, pid: int) -> int | None:
        """The client port in the server.properties that our running broker was started with."""
        del pid  # server.properties is written only when the broker is launched
        try:
            text = self.properties_file.read_text(encoding="utf-8")
        except OSError:
            return None
        match = re.search(
            r"^advertised\.listeners=PLAINTEXT://[^:\s]+:(\d+)(?:,\S*)?\s*$", text, re.M
        )
        return int(match.group(1)) if match else None

    def _is_our_process(self, cmdline: str) -> bool:
        return "kafka.Kafka" in cmdline and str(self.properties_file) in cmdline

    def _classpath(self) -> str:
        return f"{self.libs_dir}/*"

    def _format_storage(self, java: str) -> None:
        """Format the data folder once; KRaft refuses to start on an unformatted one."""
        if (self.data_dir / "meta.properties").exists():
            return
        self._log("formatting Kafka storage (first start)…")
        argv = [
            java,
            "-Xmx256m",
            *self._log4j_opts(),
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.properties_file),
            "-g",  # a folder that is formatted already is fine
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"formatting Kafka storage in {self.data_dir} failed: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise StackError(
                f"formatting Kafka storage in {self.data_dir} failed "
                f"(exit code {done.returncode}):\n{output}"
            )

    def _launch(self) -> int:
        java = self._java()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(
            render_server_properties(
                port=self.port,
                controller_port=self._resolved_controller_port(),
                data_dir=self.data_dir,
                extra=self.extra_properties,
            ),
            encoding="utf-8",
        )
        self._format_storage(java)
        argv = [
            java,
            *_JVM_OPTS,
            "-Djava.awt.headless=true",
            *self._log4j_opts(),
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.properties_file),
        ]
        return start_detached(argv, log_file=self.log_file, cwd=self.dir)
