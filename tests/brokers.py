"""The brokers the reliability tests run on: the run's Redis, and the RabbitMQ on 127.0.0.1:5672.

RabbitMQ is shared by every test run on the machine, so each run gets a virtual host of its own
(made and deleted with `rabbitmqctl`, which is installed with the server): concurrent runs never see
each other's queues. It is never restarted by a test; a broker outage is a TCP proxy in front of
the broker that the test stops and starts (`TcpProxy`), which drops the worker's connections as a
broker restart would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.platform.celery_config import QUEUES

RABBITMQ_URL = os.environ.get("FOLLOWUP_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


def _rabbitmqctl(*args: str) -> None:
    run = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"rabbitmqctl {' '.join(args)}: {run.stdout}{run.stderr}"


@contextmanager
def rabbitmq_vhost():
    """A fresh virtual host on the machine's RabbitMQ, for this run only; yields its amqp:// URL."""
    name = f"followup_test_{uuid.uuid4().hex[:10]}"
    user = urlsplit(RABBITMQ_URL).username or "guest"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield f"{RABBITMQ_URL.rstrip('/')}/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


@dataclass
class Broker:
    """The broker a parametrized test runs on, and the app (settings, dispatcher) that publishes to it."""

    name: str  # "redis" or "rabbitmq"
    app: object

    @property
    def url(self) -> str:
        return self.app.config["SETTINGS"].celery_broker_url

    @property
    def db(self):
        return self.app.extensions["followup.db"]

    def ready(self, queue: str = "realtime") -> int:
        """Messages waiting in a queue, not yet fetched by a worker."""
        celery = self.app.extensions["followup.dispatcher"].celery
        if self.name == "redis":
            return self.app.extensions["followup.redis"].llen(queue)
        with celery.connection_for_write() as connection, connection.channel() as channel:
            return channel.queue_declare(queue, passive=True).message_count

    def idle(self) -> bool:
        """No message waits in any queue (on Redis: and none is held unacknowledged either)."""
        if any(self.ready(queue) for queue in QUEUES):
            return False
        return self.name != "redis" or self.app.extensions["followup.redis"].hlen("unacked") == 0

    def purge(self) -> None:
        celery = self.app.extensions["followup.dispatcher"].celery
        with celery.connection_for_write() as connection, connection.channel() as channel:
            for queue in QUEUES:
                with suppress(Exception):  # a queue never declared in this vhost
                    channel.queue_purge(queue)

    def via(self, proxy: TcpProxy) -> str:
        """This broker's URL with its host and port replaced by the proxy's."""
        parts = urlsplit(self.url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))

    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or (6379 if self.name == "redis" else 5672)


class TcpProxy:
    """Forwards 127.0.0.1:port to a broker; `stop()` drops every connection and refuses new ones
    (the broker looks down to its clients), `start()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            live, self._sockets = self._sockets, set()
        for sock in live:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
