"""A secured cluster: Kafka over SASL_SSL (PLAIN) and Redis over TLS with an ACL user.

Every Kafka client of bestand (the worker, the producer, the lag probe of ``bestand status``)
and both Redis clients (worker and API) take their credentials and CA from the settings; a
wrong Kafka password is refused.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from support import (
    KAFKA_LIBS,
    PROJECT_DIR,
    Deployment,
    Process,
    bestand_cli,
    make_deployment,
    redis_with_user,
    run,
    wait_for,
)

from bestand.api import create_api
from bestand.ingest.producer import EventProducer
from bestand.settings import Settings
from bestand.stack import LocalKafka, free_ports

pytestmark = pytest.mark.integration

KAFKA_USER, KAFKA_PASSWORD = "bestand", "kafka-test-password-1234"
REDIS_USER, REDIS_PASSWORD = "bestand", "redis-test-password-1234"


@dataclass(frozen=True)
class Pki:
    """A test CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""

    ca: Path
    cert: Path
    key: Path
    bundle: Path  # key and certificate in one file, as Kafka's PEM keystore reads it


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    names = ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    ca_key, ca, key, csr, cert = (folder / name for name in names)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=bestand test CA", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", str(key), "-out", str(csr))  # fmt: skip
    extensions = folder / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(extensions),
             "-out", str(cert))  # fmt: skip
    bundle = folder / "server-bundle.pem"
    bundle.write_text(key.read_text() + cert.read_text(), encoding="utf-8")
    return Pki(ca=ca, cert=cert, key=key, bundle=bundle)


@pytest.fixture(scope="module")
def sasl_kafka(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker whose clients' listener is SASL_SSL; yields its bootstrap address."""
    port, controller, secured = free_ports(3)
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{KAFKA_USER}="{KAFKA_PASSWORD}";'
    )
    extra = {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_SSL://127.0.0.1:{secured}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secured}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.bundle),
    }
    server = LocalKafka(tmp_path_factory.mktemp("sasl") / "broker", port=port,
                        controller_port=controller, libs_dir=KAFKA_LIBS, project_dir=PROJECT_DIR,
                        log=lambda _: None, extra_properties=extra)  # fmt: skip
    server.start()
    server.wait_ready(120)
    try:
        yield f"127.0.0.1:{secured}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_redis(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """redis-server on TLS only, the default user off and one user with a password."""
    (port,) = free_ports(1)
    folder = tmp_path_factory.mktemp("tls-redis")
    listen = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(pki.cert),
              "--tls-key-file", str(pki.key), "--tls-ca-cert-file", str(pki.ca),
              "--tls-auth-clients", "no"]  # fmt: skip
    with redis_with_user(folder, REDIS_USER, REDIS_PASSWORD, listen, port=port, ssl=True,
                         ssl_ca_certs=str(pki.ca)):  # fmt: skip
        yield port


def _secured(pki: Pki, bootstrap: str, redis_port: int, tmp_path: Path,
             password: str = KAFKA_PASSWORD) -> Deployment:  # fmt: skip
    url = (f"rediss://{REDIS_USER}:{REDIS_PASSWORD}@127.0.0.1:{redis_port}/0"
           f"?ssl_ca_certs={pki.ca}")  # fmt: skip
    plain = make_deployment(bootstrap, url, tmp_path)
    env = {
        **plain.env,
        "BESTAND_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "BESTAND_KAFKA_SASL_MECHANISM": "PLAIN",
        "BESTAND_KAFKA_SASL_USERNAME": KAFKA_USER,
        "BESTAND_KAFKA_SASL_PASSWORD": password,
        "BESTAND_KAFKA_SSL_CAFILE": str(pki.ca),
    }
    settings = Settings(
        _env_file=None, **{k.removeprefix("BESTAND_").lower(): v for k, v in env.items()}
    )
    return Deployment(env=env, settings=settings, log_dir=tmp_path)


def _order(n: int) -> dict[str, object]:
    return {
        "type": "order_placed", "event_id": f"sec-{n}", "event_time": f"2026-10-0{n}T10:00:00Z",
        "order_id": f"o-sec-{n}", "total": "25.00", "currency": "EUR", "channel": "web",
        "customer": {"guest": True, "email": "secured@example.com"},
    }  # fmt: skip


def test_worker_api_and_status_work_over_sasl_ssl_and_redis_tls(
    pki: Pki, sasl_kafka: str, tls_redis: int, tmp_path: Path
) -> None:
    deployment = _secured(pki, sasl_kafka, tls_redis, tmp_path)
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")

    async def send() -> None:
        async with EventProducer(deployment.settings) as producer:
            report = await producer.send_all([_order(n) for n in (1, 2, 3)])
        assert report.unroutable == 0

    async def lookup() -> dict[str, object]:
        api = create_api(deployment.settings)
        try:
            return await api.service.lookup("email", "secured@example.com")
        finally:
            await api.close()

    try:
        run(send())
        answer = wait_for(lambda: (a := run(lookup()))["orders_count"] == 3 and a,
                          timeout=120, what="three orders through the secured cluster")  # fmt: skip
        assert answer["existing_customer"] is True
        status = bestand_cli(deployment, "status", "--json")
        assert status.returncode == 0, status.stderr
        report = orjson.loads(status.stdout)
        assert report["partitions"], report  # the lag probe reached the group over SASL_SSL
        worker.assert_running()
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_a_wrong_kafka_password_is_refused(
    pki: Pki, sasl_kafka: str, tls_redis: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deployment = _secured(pki, sasl_kafka, tls_redis, tmp_path, password="not-the-password")

    async def send() -> None:
        async with EventProducer(deployment.settings) as producer:
            await producer.send(_order(4))

    with pytest.raises(KafkaConnectionError):
        run(send())
    assert "SaslAuthenticationFailed" in caplog.text  # the reason is logged, not just "failed"
