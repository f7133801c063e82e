"""`make run`'s ports: the event stream listens beside the web app, on the next port when it is free."""

import socket

from app.devtools.local_redis import free_port
from app.devtools.runner import stream_port


def _held_port_pair() -> tuple[int, socket.socket]:
    """A free port whose next port this test then holds (listening on every address, as a program
    already running there would)."""
    while True:
        port = free_port()
        holder = socket.socket()
        try:
            holder.bind(("0.0.0.0", port + 1))
        except OSError:
            holder.close()
            continue
        holder.listen()
        return port, holder


def test_the_stream_takes_the_port_after_the_web_apps_when_it_is_free():
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
        break

    assert stream_port(port) == port + 1


def test_the_stream_takes_another_free_port_when_the_next_one_is_taken():
    port, holder = _held_port_pair()
    with holder:
        chosen = stream_port(port)

        assert chosen != port + 1
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", chosen))  # the stream can listen there
