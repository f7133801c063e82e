"""Does the Twilio account the engine sends with hold this number or Messaging Service? Asked with
Twilio's own client: IncomingPhoneNumbers filtered by PhoneNumber, and a fetch of the Service.

Twilio answers both only within the account whose credentials ask (another account's number lists
nothing, another account's Service is a 404), so an answer means the clinic's sender is ours to
send from. The client's public API addresses are mapped onto SMS_API_URL and SMS_MESSAGING_API_URL,
so a regional edge or a local stand-in answers in their place.
"""

from __future__ import annotations

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.platform.errors import DomainError

PUBLIC_API = "https://api.twilio.com/2010-04-01"
PUBLIC_MESSAGING_API = "https://messaging.twilio.com/v1"
NOT_OURS = "not in the Twilio account the engine sends with"


class TwilioUnavailable(DomainError):
    """Twilio could not be asked (unreachable, or it refused the engine's credentials): nothing is
    changed, and the caller may try again."""

    status = 503


class _RoutedHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, its public API addresses replaced by the configured ones."""

    def __init__(self, routes: dict[str, str], timeout: float):
        super().__init__(timeout=timeout)
        self.routes = routes

    def request(self, method, url, *args, **kwargs):
        for public, configured in self.routes.items():
            if url.startswith(public):
                url = configured.rstrip("/") + url[len(public) :]
                break
        return super().request(method, url, *args, **kwargs)


def _client(settings) -> Client:
    routes = {PUBLIC_API: settings.sms_api_url, PUBLIC_MESSAGING_API: settings.sms_messaging_api_url}
    http = _RoutedHttpClient(routes, timeout=settings.notification_send_timeout)
    return Client(username=settings.sms_account, password=settings.sms_token, http_client=http)


def can_check(settings) -> bool:
    """False on the console backend (development: nothing is sent, there is no account to ask)."""
    return settings.sms_backend == "http"


def holds_number(settings, number: str) -> bool:
    """Whether the account holds the number `number` (E.164)."""
    found = _ask(
        settings,
        lambda client: client.api.v2010.account.incoming_phone_numbers.list(phone_number=number, limit=1),
    )
    return any(getattr(each, "phone_number", None) == number for each in found or [])


def holds_messaging_service(settings, sid: str) -> bool:
    """Whether the account holds the Messaging Service `sid`."""
    service = _ask(settings, lambda client: client.messaging.v1.services(sid).fetch())
    return service is not None and service.account_sid == settings.sms_account


def _ask(settings, call):
    """What `call(client)` answers; None for Twilio's 404 (not in this account). Twilio unreachable,
    failing, or refusing the engine's own credentials: TwilioUnavailable, since the clinic's input
    may be right and nothing could be checked."""
    try:
        return call(_client(settings))
    except TwilioRestException as exc:
        if exc.status == 404:
            return None
        raise TwilioUnavailable(
            f"Twilio could not be asked whether the account holds this sender (HTTP {exc.status})"
        ) from exc
    except (TwilioException, OSError, ValueError) as exc:  # requests' errors are OSErrors
        raise TwilioUnavailable(
            "Twilio could not be reached to check the sender; try again", headers={"Retry-After": "30"}
        ) from exc
