"""A receiver that is there but barely: it takes the request, then answers one byte every `interval`
seconds (a status line and headers that never seem to end), so no single read ever times out."""

from __future__ import annotations

import select
import socket
import threading
import time

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Padding: " + b"." * 200 + b"\r\n\r\n"


class TrickleServer:
    def __init__(self, *, interval: float = 0.5, length: int = 60):
        self.interval, self.length = interval, length  # `length` bytes: the whole answer's time
        self.connections: list[dict] = []  # each: accepted (monotonic), ended, bytes sent
        self.open = 0
        self.most_open = 0  # the most connections open at once
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def trickle_seconds(self) -> float:
        """How long the whole answer takes to trickle out."""
        return self.interval * self.length

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            record = {"accepted": time.monotonic(), "ended": None, "sent": 0}
            with self.lock:
                self.connections.append(record)
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._trickle, args=(conn, record), daemon=True).start()

    def _trickle(self, conn: socket.socket, record: dict):
        try:
            conn.settimeout(self.trickle_seconds + 5)
            request = b""
            while b"\r\n\r\n" not in request:  # headers; the small body came with them or is ignored
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            for byte in ANSWER[: self.length]:
                # Wait the interval, watching for the client's end (its FIN) to see it at once.
                readable, _, _ = select.select([conn], [], [], self.interval)
                if self._stop.is_set() or (readable and not conn.recv(1024)):
                    return
                conn.sendall(bytes([byte]))
                record["sent"] += 1
        except OSError:
            pass  # the client cut the connection
        finally:
            record["ended"] = time.monotonic()
            with self.lock:
                self.open -= 1
            conn.close()

    def close(self):
        self._stop.set()
        self._listener.close()
