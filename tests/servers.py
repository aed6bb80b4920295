"""Real servers the tests start on free loopback ports and stop after (installed by `make setup`)."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float, failure) -> None:
    """Wait until `process` listens on `port`; if it exits or `seconds` pass, kill it and fail
    with `failure()`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(failure()) from None
            time.sleep(0.05)


@contextmanager
def redis_server(folder):
    """A Redis server with no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: run `make setup`"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, 20, lambda: "redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)


KAFKA_JARS = Path(__file__).resolve().parent.parent / ".jars" / "kafka-broker"


@contextmanager
def kafka_broker(folder):
    """A one-node Kafka broker in KRaft mode (broker and controller in one JVM), from Apache
    Kafka's own jars; yields its bootstrap servers ("127.0.0.1:port")."""
    assert (KAFKA_JARS / ".fetched").exists(), "the Kafka broker's jars are missing: run `make setup`"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port, controller = free_port(), free_port()
    config = folder / "server.properties"
    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={folder / 'logs'}",
                "num.partitions=2",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
            ]
        )
        + "\n"
    )
    java = [shutil.which("java") or "java", "-Xmx512m", "-XX:+UseSerialGC", "-cp", f"{KAFKA_JARS}/*"]
    cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(config)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    log = open(folder / "broker.log", "wb")
    process = subprocess.Popen([*java, "kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process, 90, lambda: "the Kafka broker did not start:\n" + (folder / "broker.log").read_text()[-3000:])
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def s3_server(folder):
    """moto's server mode: S3, with conditional writes, over HTTP; yields its URL."""
    binary = Path(sys.executable).parent / "moto_server"
    assert binary.exists(), "moto_server is not installed: run `make setup`"
    port = free_port()
    log_path = Path(folder) / "moto.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(port, process, 30, lambda: f"moto_server did not start: {log_path.read_text()}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=20)


@contextmanager
def pushgateway():
    """A Prometheus Pushgateway (Debian's), keeping what is pushed in memory; yields its address."""
    binary = shutil.which("prometheus-pushgateway")
    assert binary, "prometheus-pushgateway is not installed: run `make setup`"
    port = free_port()
    process = subprocess.Popen(
        # Debian's build persists to a file under /var/lib by default: an empty name keeps it in memory
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, 20, lambda: "prometheus-pushgateway did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
