"""A local stand-in for Meta's Instagram Graph API, speaking its request and webhook formats.

Used by the tests and by `make run`'s development mode (app/devtools/runner.py starts it when
INSTAGRAM_GRAPH_URL is not set and points the engine at it):

- POST /{version}/{IG_ID}/messages (and /{version}/me/messages): the Send API. The bearer token must
  be the one registered for the account (`accounts`); the JSON body carries `recipient.id` and
  `message.text` (with `messaging_type` and `tag` for a human agent's late reply). Recorded in
  `sent`, answered {"recipient_id", "message_id"} as Graph does; a wrong token is Graph's
  OAuthException (code 190), a recipient who never wrote is its error 100 (subcode 2534014).
- GET /{version}/{IGSID}?fields=username,name: the User Profile API, from `profiles`.
- GET /{version}/me?fields=user_id,username: whose account the bearer token is (`user_id`, the
  IG_ID; `id`, an app-scoped id), from `accounts`; a token it does not know is Graph's
  OAuthException (HTTP 400, code 190). `fail_token_checks` makes the next ones answer an error.
- `send_dm(...)`: what Meta does when a family writes to the clinic: a signed notification
  (X-Hub-Signature-256 under the app secret) POSTed to the engine's /api/webhooks/instagram.

`fail_next` makes the next sends answer an error (a status and Graph's error code), to see how the
engine classifies them.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SEND_PATH = re.compile(r"^/(?P<version>v[\d.]+)/(?P<account>me|\d+)/messages$")
PROFILE_PATH = re.compile(r"^/(?P<version>v[\d.]+)/(?P<igsid>[\w-]+)$")
WEBHOOK_PATH = "/api/webhooks/instagram"
DEVELOPMENT_TOKEN = re.compile(r"(\d{5,})$")  # development: `dev-token-17841400000000001` is that account's


class GraphStandIn:
    """The server's state: the accounts and their tokens, the profiles, what was sent, and errors to come."""

    def __init__(self, *, development: bool = False, outbox: Path | None = None):
        # Development (`make run`): any token is the account the path names (for /me: a token
        # ending in the account's id), and anyone who wrote has a profile; each accepted message is
        # also a JSON line in `outbox`.
        self.development = development
        self.outbox = outbox
        self.accounts: dict[str, str] = {}  # IG_ID -> its access token
        self.profiles: dict[str, dict] = {}  # IGSID -> {"username", "name"}
        self.sent: list[dict] = []  # each accepted message: account, recipient, text, messaging_type, tag, at
        self.fail_next: list[tuple[int, int]] = []  # (HTTP status, Graph error code) for the next sends
        self.fail_token_checks: list[tuple[int, int]] = []  # the same, for the next GET /me
        # A family's attachments, as Meta's CDN serves them: path -> (bytes, content type), unauthenticated.
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_fetches = 0
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    def account_of_token(self, token: str, path_account: str = "me") -> str | None:
        if self.development:
            found = DEVELOPMENT_TOKEN.search(token)
            return path_account if path_account != "me" else found and found[1]
        return next((a for a, t in self.accounts.items() if hmac.compare_digest(t, token)), None)

    def profile_of(self, igsid: str) -> dict | None:
        if igsid not in self.profiles and self.development:
            return {"username": f"family.{igsid[-4:]}", "name": f"Family {igsid[-4:]}"}
        return self.profiles.get(igsid)

    def record(self, sent: dict) -> None:
        with self.lock:
            self.sent.append(sent)
            if self.outbox is not None:
                self.outbox.parent.mkdir(parents=True, exist_ok=True)
                with open(self.outbox, "a", encoding="utf-8") as out:
                    out.write(json.dumps(sent, ensure_ascii=False) + "\n")

    def start(self, port: int = 0, host: str = "127.0.0.1") -> GraphStandIn:
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="instagram-stand-in", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def add_media(self, content: bytes, content_type: str) -> str:
        """Serve `content` as an attachment's payload.url; that URL."""
        path = f"/ig_messaging_cdn/{self.next_id('asset')}"
        with self.lock:
            self.media[path] = (content, content_type)
        return f"{self.url}{path}"


def _handler_for(state: GraphStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the tests and `make run` have their own logs
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: int, message: str, subcode: int | None = None) -> None:
            error = {
                "message": message,
                "type": "OAuthException" if code == 190 else "IGApiException",
                "code": code,
            }
            if subcode is not None:
                error["error_subcode"] = subcode
            self._answer(status, {"error": {**error, "fbtrace_id": "standin"}})

        def _account(self, path_account: str = "me") -> str | None:
            header = self.headers.get("Authorization") or ""
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            return state.account_of_token(token, path_account) if token else None

        def do_POST(self):
            path = urllib.parse.urlsplit(self.path).path
            match = SEND_PATH.match(path)
            if match is None:
                return self._error(404, 100, "Unknown path")
            account = self._account(match["account"])
            if account is None or match["account"] not in ("me", account):
                return self._error(401, 190, "Invalid OAuth access token")
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                recipient, message = str(body["recipient"]["id"]), body["message"]
                attachment = message.get("attachment")
                text = None if attachment is not None else message["text"]
                if attachment is not None and not attachment["payload"]["url"]:
                    raise ValueError("no url")
            except (ValueError, KeyError, TypeError, AttributeError):
                return self._error(
                    400, 100, "(#100) recipient.id and message.text or attachment are required"
                )
            with state.lock:
                failure = state.fail_next.pop(0) if state.fail_next else None
            if failure is not None:
                return self._error(failure[0], failure[1], "(stand-in) failure asked for by the test")
            if state.profile_of(recipient) is None:
                return self._error(400, 100, "(#100) No matching user found", subcode=2534014)
            message_id = state.next_id("aWdfZAG1faXRlbT")
            state.record(
                {
                    "account": account,
                    "recipient": recipient,
                    "text": text,
                    "attachment": attachment,
                    "messaging_type": body.get("messaging_type"),
                    "tag": body.get("tag"),
                    "message_id": message_id,
                    "at": time.time(),
                }
            )
            return self._answer(200, {"recipient_id": recipient, "message_id": message_id})

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path)
            with state.lock:
                found = state.media.get(parts.path)
                state.media_fetches += found is not None
            if found is not None:
                content, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                return None
            match = PROFILE_PATH.match(parts.path)
            if match is not None and match["igsid"] == "me":
                return self._owner_of_token()
            if match is None or self._account() is None:
                return self._error(401 if match else 404, 190 if match else 100, "Invalid request")
            profile = state.profile_of(match["igsid"])
            if profile is None:
                return self._error(400, 100, "(#100) No matching user found")
            fields = (urllib.parse.parse_qs(parts.query).get("fields") or ["username,name"])[0].split(",")
            shown = {f: profile[f] for f in fields if profile.get(f)}
            return self._answer(200, {"id": match["igsid"], **shown})

        def _owner_of_token(self):
            with state.lock:
                failure = state.fail_token_checks.pop(0) if state.fail_token_checks else None
            if failure is not None:
                return self._error(failure[0], failure[1], "(stand-in) failure asked for by the test")
            account = self._account()
            if account is None:  # Graph's answer to a token it cannot parse or that was revoked
                return self._error(400, 190, "Invalid OAuth access token - Cannot parse access token")
            return self._answer(
                200, {"user_id": account, "username": f"clinic.{account[-4:]}", "id": f"9{account}"}
            )

    return Handler


def webhook_body(
    *, account_id: str, igsid: str, text: str, mid: str, at_ms: int | None = None, attachments=None
) -> bytes:
    """A messaging notification as Meta sends it for one DM from `igsid` to `account_id`
    (`attachments`: [{"type": "image", "payload": {"url": ...}}], as Meta sends a photo)."""
    at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
    message = {"mid": mid, "text": text, **({"attachments": attachments} if attachments else {})}
    event = {"sender": {"id": igsid}, "recipient": {"id": account_id}, "timestamp": at_ms, "message": message}
    notification = {"object": "instagram", "entry": [{"id": account_id, "time": at_ms, "messaging": [event]}]}
    return json.dumps(notification).encode()


def signature(app_secret: str, body: bytes) -> str:
    """X-Hub-Signature-256 as Meta computes it."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def send_dm(engine_url: str, *, app_secret: str, body: bytes) -> int:
    """POST a notification to the engine's webhook, signed as Meta signs it; the HTTP status."""
    request = urllib.request.Request(
        engine_url.rstrip("/") + WEBHOOK_PATH,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature(app_secret, body)},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status


def main(argv: list[str] | None = None) -> int:
    """A family's DM in development:
    `python -m app.devtools.instagram dm --from 1790... --to <IG_ID> "Hello"`."""
    parser = argparse.ArgumentParser(description="Send a DM to the engine as an Instagram user would")
    parser.add_argument("command", choices=["dm"])
    parser.add_argument("text")
    parser.add_argument("--from", dest="igsid", required=True, help="the family's Instagram-scoped id")
    parser.add_argument("--to", dest="account_id", required=True, help="the clinic's connected account id")
    parser.add_argument("--engine", default="http://127.0.0.1:5000")
    parser.add_argument(
        "--app-secret", default=None, help="INSTAGRAM_APP_SECRET (default: var/instagram_app_secret)"
    )
    args = parser.parse_args(argv)
    secret = args.app_secret or _development_app_secret()
    mid = f"m_dev_{int(time.time() * 1000)}"
    body = webhook_body(account_id=args.account_id, igsid=args.igsid, text=args.text, mid=mid)
    print(send_dm(args.engine, app_secret=secret, body=body))
    return 0


def _development_app_secret() -> str:
    from app.platform import config

    return (config.VAR_DIR / "instagram_app_secret").read_text().strip()


if __name__ == "__main__":
    raise SystemExit(main())
