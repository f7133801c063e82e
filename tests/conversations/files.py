"""A plain HTTP file server on a free local port: a clinic's public files (what an outbound MMS
points Twilio at) or a foreign host a forged media URL names. It counts every request it gets, so a
test sees that a URL was never fetched."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Files:
    def __init__(self):
        self.files: dict[str, tuple[str, bytes | None, int]] = {}  # path -> (type, content, size)
        self.requests: list[tuple[str, str]] = []  # (method, path) of each request
        self.base = ""
        self.port = 0
        self.lock = threading.Lock()

    def add(self, path: str, content_type: str, *, content: bytes | None = None, size: int = 0) -> str:
        """Serve `content` (or, answering HEAD only, a file of `size` bytes) at `path`; its URL."""
        self.files[path] = (content_type, content, len(content) if content is not None else size)
        return f"{self.base}{path}"


def _handler_for(state: Files):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self, with_body: bool):
            with state.lock:
                state.requests.append((self.command, self.path))
            found = state.files.get(self.path)
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            content_type, content, size = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if with_body and content is not None:
                self.wfile.write(content)

        def do_GET(self):
            self._serve(with_body=True)

        def do_HEAD(self):
            self._serve(with_body=False)

    return Handler


@contextmanager
def file_server(host: str = "127.0.0.1", port: int = 0):
    """`host` and `port`: where it listens (any loopback address; a free port by default)."""
    state = Files()
    server = ThreadingHTTPServer((host, port), _handler_for(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    state.base = f"http://{host}:{state.port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
