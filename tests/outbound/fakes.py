"""Real servers standing in for the outside providers: an SMTP server (aiosmtpd) and a Twilio-style
SMS HTTP API, each on a free local port in a thread of the test process.

Both count what they accept by the message's delivery key, so a test sees a duplicate send exactly,
and note when each accepted message arrived (`arrivals`), so a test sees the pace of its sender.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from contextlib import contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from twilio.request_validator import RequestValidator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpHandler:
    """Accepts mail; can refuse recipients (550), answer 451 to first attempts, or stall after DATA.

    Offers PIPELINING as production servers do (aiosmtpd reads each command in turn from its stream,
    so pipelined commands work; it just does not say so); `pipelining = False` hides it."""

    def __init__(self):
        self.connections = 0  # SMTP sessions opened (each greets once)
        self.pipelining = True
        self.pipelined_envelopes = 0  # MAIL FROM that arrived with its RCPT TO and DATA in one write
        self.transient_keys: set[str] = set()  # answer 451 to the first DATA attempt of these keys
        self.stall_keys: set[str] = set()  # stall after taking these keys' messages (stall_after_data)
        self.accepted: Counter[str] = Counter()  # X-Followup-Key -> deliveries
        self.raw_messages: list[bytes] = []  # parsed only when a test reads `messages`
        self.arrivals: list[tuple[float, str | None]] = []  # (time.monotonic(), key) of each message taken
        self.attempts: Counter[str] = Counter()
        self.rcpt_count = 0
        self.refuse = set()  # addresses answered 550
        self.transient_first = 0  # answer 451 to the first N DATA attempts of each key
        self.fail_rate = 0.0
        self.rng = None
        self.stall_after_data = 0.0  # seconds to wait after taking the message, before answering
        # By recipient domain: messages taken and not yet answered now, and the most at once so far.
        self.answering: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # A pipelined envelope is already waiting in the stream when MAIL is answered; a lock-step
        # client sends RCPT only after this reply.
        if b"DATA" in bytes(getattr(server._reader, "_buffer", b"")):
            with self.lock:
                self.pipelined_envelopes += 1
        envelope.mail_from, envelope.mail_options = address, list(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_count += 1
        if address in self.refuse:  # as Postfix words it: the refused address quoted
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    @property
    def messages(self) -> list:
        with self.lock:
            return [message_from_bytes(raw) for raw in self.raw_messages]

    async def handle_DATA(self, server, session, envelope):
        arrived = time.monotonic()  # the content's final dot came in
        key = followup_key(envelope.content)
        with self.lock:
            self.attempts[key] += 1
            first_attempts = self.attempts[key] <= self.transient_first or (
                key in self.transient_keys and self.attempts[key] == 1
            )
            flaky = self.fail_rate and self.attempts[key] == 1 and self.rng.random() < self.fail_rate
        if first_attempts or flaky:
            return "451 4.3.0 try again later"
        domain = envelope.rcpt_tos[0].rpartition("@")[2] if envelope.rcpt_tos else ""
        with self.lock:
            self.accepted[key] += 1
            self.raw_messages.append(envelope.content)
            self.arrivals.append((arrived, key))
            self.answering[domain] += 1
            self.most_at_once[domain] = max(self.most_at_once[domain], self.answering[domain])
        try:
            if self.stall_after_data and (not self.stall_keys or key in self.stall_keys):
                import asyncio

                await asyncio.sleep(self.stall_after_data)  # the message is ours; the answer comes late
        finally:
            with self.lock:
                self.answering[domain] -= 1
        return "250 2.0.0 queued"


_KEY = re.compile(rb"^X-Followup-Key:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


def followup_key(content: bytes) -> str | None:
    """The X-Followup-Key header of a message, read from its header block alone (no full parse: the
    benchmark's server takes thousands of messages a second on the cores the workers use)."""
    header = re.sub(rb"\r?\n[ \t]+", b" ", content.partition(b"\r\n\r\n")[0])  # unfold
    found = _KEY.search(header)
    return found.group(1).decode() if found else None


_PLAIN_ADDRESS = re.compile(r"^\s*<([^<>\s@]+@[^<>\s@]+)>(.*)$")


class _Session(SMTP):
    """aiosmtpd's SMTP session, reading a plain "<a@b.c>" address without the RFC 5322 parser (which
    also builds a typing.Protocol class on every call): in the benchmark this server takes thousands
    of commands a second on the cores the workers use. Anything else goes to aiosmtpd's parser."""

    def _getaddr(self, arg):
        plain = _PLAIN_ADDRESS.match(arg or "")
        return (plain.group(1), plain.group(2)) if plain else super()._getaddr(arg)


class _Controller(Controller):
    def factory(self):
        return _Session(self.handler, **self.SMTP_kwargs)


@contextmanager
def smtp_server(port: int | None = None):
    handler = SmtpHandler()
    controller = _Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


class SmsProvider:
    """State of the fake provider: accepted messages (each request is a new message, as at Twilio,
    which has no idempotency key), and its failure modes."""

    def __init__(self, account="AC123", token="secret-token"):
        self.account, self.token = account, token
        self.messages: list[dict] = []
        # (time.monotonic() as its request came in, its From or MessagingServiceSid) of each accepted message
        self.arrivals: list[tuple[float, str | None]] = []
        self.requests = 0
        self.lookups = 0  # GET Messages.json (reconciliation)
        self.unavailable_for = 0  # answer 503 to this many requests first
        # The account's own senders, as Twilio lists them (IncomingPhoneNumbers, Messaging Services).
        self.numbers: set[str] = set()
        self.services: set[str] = set()
        self.lookup_stall = 0.0  # seconds to wait before answering those lookups (a slow Twilio)
        self.invalid_numbers: set[str] = set()  # answered 400 quoting the number, as Twilio does
        # WhatsApp: numbers with no WhatsApp account (Twilio's error 63003). A WhatsApp message is
        # recorded with its form as sent: To/From `whatsapp:+...`, and Body or ContentSid/ContentVariables.
        self.not_on_whatsapp: set[str] = set()
        self.stall = 0.0  # seconds to wait after accepting, before answering
        # An inbound MMS's media, as Twilio keeps it: path -> (bytes, content type), behind the
        # account's Basic auth (Twilio's "HTTP auth on media URLs"); and how often it was fetched.
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_fetches = 0
        self.media_redirects: dict[str, str] = {}  # path -> where a GET of it is sent (307), as Twilio's CDN
        self.lock = threading.Lock()

    def deliveries(self) -> int:
        return len(self.messages)

    def whatsapp(self) -> list[dict]:
        """The WhatsApp messages it accepted (To `whatsapp:+...`), in order."""
        with self.lock:
            return [m for m in self.messages if m["To"].startswith("whatsapp:")]

    def signature(self, url: str, form: dict) -> str:
        """X-Twilio-Signature of a webhook Twilio posts to `url` (inbound message, status callback):
        signed with the account's token, as Twilio signs."""
        return RequestValidator(self.token).compute_signature(url, form)

    def add_media(self, base_url: str, message_sid: str, content: bytes, content_type: str) -> str:
        """Keep `content` as the media of an inbound message; its MediaUrl (as Twilio posts it)."""
        path = f"/Accounts/{self.account}/Messages/{message_sid}/Media/ME{len(self.media):032d}"
        with self.lock:
            self.media[path] = (content, content_type)
        return f"{base_url}{path}"


def _handler_for(provider: SmsProvider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            expected = "Basic " + base64.b64encode(f"{provider.account}:{provider.token}".encode()).decode()
            return self.headers.get("Authorization") == expected

        def _not_found(self, path: str):
            return self._answer(
                404,
                {
                    "code": 20404,
                    "message": f"The requested resource {path} was not found",
                    "more_info": "https://www.twilio.com/docs/errors/20404",
                    "status": 404,
                },
            )

        def do_GET(self):
            """Messages.json filtered by To, as Twilio lists messages (body, to, from, sid, status);
            IncomingPhoneNumbers.json filtered by PhoneNumber and GET /v1/Services/<sid> (the
            Messaging Services API), as Twilio answers them, within the account asking."""
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            if parts.path in provider.media_redirects:
                self.send_response(307)
                self.send_header("Location", provider.media_redirects[parts.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if parts.path in provider.media:
                return self._media(parts.path)
            if parts.path.endswith("/IncomingPhoneNumbers.json") or parts.path.startswith("/v1/"):
                if not self._authorized():
                    return self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
                time.sleep(provider.lookup_stall)
                if parts.path == f"/Accounts/{provider.account}/IncomingPhoneNumbers.json":
                    return self._answer(200, self._numbers_page(parts, query))
                sid = parts.path.removeprefix("/v1/Services/")
                if parts.path.startswith("/v1/Services/") and sid in provider.services:
                    return self._answer(200, self._service(sid))
                return self._not_found(parts.path)
            with provider.lock:
                provider.lookups += 1
                found = [
                    {
                        "sid": m["sid"],
                        "to": m["To"],
                        "from": m.get("From"),
                        "body": m["Body"],
                        "status": "sent",
                    }
                    for m in provider.messages
                    if m["To"] == query.get("To")
                ]
            return self._answer(200, {"messages": found})

        def _media(self, path: str):
            if not self._authorized():
                return self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            with provider.lock:
                provider.media_fetches += 1
                content, content_type = provider.media[path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            return None

        def _numbers_page(self, parts, query: dict) -> dict:
            wanted = query.get("PhoneNumber")
            numbers = sorted(n for n in provider.numbers if wanted in (None, n))
            return {
                "incoming_phone_numbers": [
                    {
                        "account_sid": provider.account,
                        "sid": f"PN{abs(hash(n)):032x}"[:34],
                        "phone_number": n,
                        "friendly_name": n,
                        "capabilities": {"sms": True, "mms": False, "voice": True, "fax": False},
                        "status": "in-use",
                    }
                    for n in numbers
                ],
                "uri": f"{parts.path}?{parts.query}",
                "first_page_uri": f"{parts.path}?{parts.query}",
                "next_page_uri": None,
                "previous_page_uri": None,
                "page": 0,
                "page_size": int(query.get("PageSize") or 50),
                "start": 0,
                "end": max(len(numbers) - 1, 0),
            }

        def _service(self, sid: str) -> dict:
            return {
                "account_sid": provider.account,
                "sid": sid,
                "friendly_name": "Clinic pool",
                "date_created": "2026-01-05T10:00:00Z",
                "date_updated": "2026-01-05T10:00:00Z",
                "url": f"https://messaging.twilio.com/v1/Services/{sid}",
                "links": {},
            }

        def do_POST(self):
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            with provider.lock:
                provider.requests += 1
                if provider.unavailable_for > 0:
                    provider.unavailable_for -= 1
                    return self._answer(503, {"message": "service unavailable"})
            expected = "Basic " + base64.b64encode(f"{provider.account}:{provider.token}".encode()).decode()
            if (
                self.path != f"/Accounts/{provider.account}/Messages.json"
                or self.headers.get("Authorization") != expected
            ):
                return self._answer(401, {"code": 20003, "message": "Authenticate"})
            to = form.get("To", "")
            if to.startswith("whatsapp:") and to.removeprefix("whatsapp:") in provider.not_on_whatsapp:
                text = "Twilio could not find a Channel with the specified To address"
                return self._answer(400, {"code": 63003, "message": text, "status": 400})
            if form.get("To") in provider.invalid_numbers:
                text = f"The 'To' number {form['To']} is not a valid phone number."
                return self._answer(400, {"code": 21211, "message": text, "status": 400})
            with provider.lock:
                message = {"sid": f"SM{len(provider.messages):032d}", **form}
                provider.messages.append(message)
                provider.arrivals.append((arrived, form.get("From") or form.get("MessagingServiceSid")))
            if provider.stall:
                time.sleep(provider.stall)
            return self._answer(201, {"sid": message["sid"], "status": "queued"})

    return Handler


@contextmanager
def sms_provider(**kwargs):
    provider = SmsProvider(**kwargs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(provider))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
