"""gunicorn's own refusals in the API's JSON error shape.

gunicorn answers a request line or a header over its limits itself, before the app sees the request,
with an HTML page. A client of the API must get the JSON error the OpenAPI document names instead:
414 `uri_too_long` for the request line, 431 `headers_too_large` for a header field or too many of
them. Malformed HTTP (not a request at all) keeps gunicorn's own answer.
"""

from __future__ import annotations

import json
import types
from http import HTTPStatus

from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine

from app.platform.errors import error_body

MESSAGES = {
    HTTPStatus.REQUEST_URI_TOO_LONG: "the request line (path and query string) is too long; "
    "send long filters in fewer, shorter parameters",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "a request header is too large, or there are too many",
}


def status_of(exc: BaseException) -> HTTPStatus | None:
    """The API's status for one of gunicorn's limit errors (None: not a limit)."""
    if isinstance(exc, LimitRequestLine):
        return HTTPStatus.REQUEST_URI_TOO_LONG
    if isinstance(exc, LimitRequestHeaders):
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    return None


def answer(status: HTTPStatus) -> bytes:
    """The whole HTTP answer gunicorn writes for a refused request (it then closes the connection)."""
    body = json.dumps(error_body(status, MESSAGES[status])).encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def install(worker) -> None:
    """Make `worker` answer its limit errors in JSON; every other error as gunicorn does."""
    original = worker.handle_error

    def handle_error(self, req, client, addr, exc):
        status = status_of(exc)
        if status is None:
            return original(req, client, addr, exc)
        self.log.warning("request refused: %s", type(exc).__name__)  # never the line: it may hold PHI
        try:
            client.sendall(answer(status))
        except OSError:
            self.log.debug("failed to send the refusal")
        return None

    worker.handle_error = types.MethodType(handle_error, worker)
