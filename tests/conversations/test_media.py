"""Images and videos in a conversation, through the API with the provider stand-ins: an inbound MMS
photo (Twilio's signed webhook) listed in the thread with the engine's URL and fetched from the
Twilio stand-in for a coordinator, refused to the front desk and to another clinic; a media URL on
a foreign host never fetched; an outbound image delivered by a real worker to the stand-in with
MediaUrl; sizes and types a channel does not take refused with a 422 naming the field; a sequence
step's image sent with it; an Instagram photo in and an Instagram image out through the Graph
stand-in."""

from __future__ import annotations

import os
import socket

import pytest

from app.devtools.instagram import GraphStandIn
from tests.automation.outreachkit import configure_clinic, enroll, lead_with, make_sequence, sms
from tests.conversations.files import file_server
from tests.conversations.test_conversations import thread
from tests.instagram.kit import APP_SECRET, VERIFY_TOKEN, connect, dm, inbound_of
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, sms_settings, use
from tests.workers import thread_worker, wait_for

PHOTO = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)  # a family's photo, as Twilio keeps it
MB = 1024 * 1024


@pytest.fixture
def providers(app, monkeypatch):
    """The Twilio stand-in (SMS in and out, and an MMS's media), the app pointed at it."""
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.numbers.add(CLINIC_NUMBER)
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        yield provider, settings


def mms(body: str, sid: str, *media: tuple[str, str]) -> dict:
    """Twilio's inbound form with NumMedia, MediaUrl{N} and MediaContentType{N}."""
    form = {**text(body, sid=sid), "NumMedia": str(len(media))}
    for n, (url, content_type) in enumerate(media):
        form[f"MediaUrl{n}"], form[f"MediaContentType{n}"] = url, content_type
    return form


def media_of(client, tenant, path: str, role: str = "treatment_coordinator"):
    return client.get(path, headers=tenant.headers(role))


def test_an_inbound_mms_photo_is_in_the_thread_and_fetched_for_a_coordinator_only(
    client,
    tenant,
    make_tenant,
    providers,
):
    provider, settings = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    photo_url = provider.add_media(settings.sms_api_url, "MMa1", PHOTO, "image/png")
    form = mms("Here is her smile", "MMa1", (photo_url, "image/png"))
    assert signed_post(client, INBOUND, form).status_code == 200

    coordinator = tenant.headers("treatment_coordinator")
    resp = client.get(f"/api/leads/{lead['id']}/conversation", headers=coordinator)
    [message] = resp.get_json()["items"]
    path = f"/api/leads/{lead['id']}/conversation/messages/{message['id']}/media/0"
    assert message["media"] == [{"n": 0, "kind": "image", "content_type": "image/png", "url": path}]
    assert photo_url not in resp.get_data(as_text=True)  # the provider's URL is never shown

    fetched = media_of(client, tenant, path)
    assert fetched.status_code == 200
    assert fetched.data == PHOTO and fetched.mimetype == "image/png"
    assert provider.media_fetches == 1
    # The front desk may not see a family's photo (PHI); another clinic's staff do not find it.
    assert media_of(client, tenant, path, role="front_desk").status_code == 403
    other = make_tenant("Other Orthodontics")
    assert media_of(client, other, path).status_code == 404
    assert media_of(client, tenant, path.replace("/media/0", "/media/1")).status_code == 404
    assert provider.media_fetches == 1
    # The family's erasure takes the photo's reference with the texts.
    erased = client.post(f"/api/leads/{lead['id']}/erase", headers=tenant.headers("clinic_admin"))
    assert erased.status_code == 200, erased.get_json()
    assert media_of(client, tenant, path, role="clinic_admin").status_code == 404
    assert provider.media_fetches == 1


def test_a_media_url_on_a_foreign_host_is_never_fetched(client, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server() as foreign:
        elsewhere = foreign.add("/internal/secret.png", "image/png", content=PHOTO)
        assert signed_post(client, INBOUND, mms("look", "MMx1", (elsewhere, "image/png"))).status_code == 200
        [message] = thread(client, tenant, lead["id"])["items"]
        resp = media_of(client, tenant, message["media"][0]["url"])
        assert resp.status_code == 502 and resp.get_json()["code"] == "media_unavailable"
        assert foreign.requests == []


def test_a_provider_redirect_to_a_foreign_host_is_not_followed(client, tenant, providers):
    provider, settings = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server() as foreign:
        inside = foreign.add("/metadata/secret.png", "image/png", content=PHOTO)
        photo_url = f"{settings.sms_api_url}/Accounts/AC123/Messages/MMr1/Media/ME1"
        provider.media_redirects[photo_url.removeprefix(settings.sms_api_url)] = inside
        assert signed_post(client, INBOUND, mms("look", "MMr1", (photo_url, "image/png"))).status_code == 200
        [message] = thread(client, tenant, lead["id"])["items"]
        resp = media_of(client, tenant, message["media"][0]["url"])
        assert resp.status_code == 502 and resp.get_json()["code"] == "media_unavailable"
        assert foreign.requests == []


def reply(client, tenant, lead_id: int, body: dict, key: str = "r1"):
    headers = {**tenant.headers("treatment_coordinator"), "Idempotency-Key": key}
    return client.post(f"/api/leads/{lead_id}/conversation/messages", json=body, headers=headers)


def test_an_outbound_image_goes_to_twilio_with_media_url(app, client, tenant, providers):
    provider, _ = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server() as files, thread_worker(app):
        before_after = files.add("/smiles/before-after.jpg", "image/jpeg", size=900_000)
        body = {"channel": "sms", "body": "Here is a result like yours", "media_url": before_after}
        resp = reply(client, tenant, lead["id"], body)
        assert resp.status_code == 201, resp.get_json()
        wait_for(lambda: len(provider.messages) == 1)
    [sent] = provider.messages
    assert sent["MediaUrl"] == before_after and sent["Body"].endswith("Here is a result like yours")
    [message] = thread(client, tenant, lead["id"])["items"]
    assert message["media"] == [{"n": 0, "kind": "image", "content_type": "image/jpeg", "url": before_after}]


@pytest.mark.parametrize(
    ("channel", "content_type", "size", "field"),
    [
        ("sms", "image/jpeg", 12 * MB, "media_url"),  # over Twilio MMS's 5 MB
        ("sms", "video/mp4", 1 * MB, "media_url"),  # MMS here carries images only
        ("email", "image/jpeg", 1 * MB, "media_url"),  # an email carries no media
    ],
)
def test_media_a_channel_does_not_take_is_a_422_naming_the_field(
    client,
    tenant,
    providers,
    channel,
    content_type,
    size,
    field,
):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server() as files:
        url = files.add("/big", content_type, size=size)
        body = {"channel": channel, "body": "Look", "media_url": url}
        if channel == "email":
            body["subject"] = "Your smile"
        resp = reply(client, tenant, lead["id"], body)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]
    assert thread(client, tenant, lead["id"])["items"] == []  # nothing queued


def test_an_image_type_without_its_url_and_a_text_with_one_are_422(client, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    missing = reply(client, tenant, lead["id"], {"channel": "sms", "body": "x", "message_type": "image"})
    assert missing.status_code == 422 and "media_url" in missing.get_json()["errors"]["json"]
    body = {"channel": "sms", "body": "x", "message_type": "text", "media_url": "https://example.com/a.png"}
    text_with_url = reply(client, tenant, lead["id"], body, key="r2")
    assert text_with_url.status_code == 422 and "message_type" in text_with_url.get_json()["errors"]["json"]
    broken = reply(client, tenant, lead["id"], {"channel": "sms", "media_url": "http://[::1"}, key="r3")
    assert broken.status_code == 422 and "media_url" in broken.get_json()["errors"]["json"]


def test_a_sequence_step_with_an_image_sends_it_and_an_oversized_one_is_refused_when_saved(
    app,
    client,
    tenant,
    providers,
):
    provider, _ = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server() as files:
        too_big = {**sms(), "media_url": files.add("/huge.png", "image/png", size=6 * MB)}
        refused = make_sequence(client, tenant, [too_big], name="Too big", expect=422)
        assert "media_url" in refused["errors"]["json"]["steps"]["0"]
        photo = files.add("/smile.png", "image/png", size=300_000)
        step = {**sms(body="Hi {{ first_name }}, a smile like yours"), "media_url": photo}
        sequence = make_sequence(client, tenant, [step])
        assert sequence["steps"][0]["message_type"] == "image"
        with thread_worker(app):
            enroll(client, tenant, lead["id"], sequence["id"])
            wait_for(lambda: len(provider.messages) == 1)
    assert provider.messages[0]["MediaUrl"] == photo


ACCOUNT, FAMILY = "17841400000000009", "1790000000000099"


@pytest.fixture
def graph(app, monkeypatch):
    stand_in = GraphStandIn().start()
    use(
        monkeypatch,
        app.config["SETTINGS"],
        instagram_graph_url=stand_in.url,
        instagram_app_secret=APP_SECRET,
        instagram_verify_token=VERIFY_TOKEN,
    )
    yield stand_in
    stand_in.stop()


def test_an_instagram_photo_in_and_an_image_out_through_graph(app, client, db, tenant, graph):
    configure_clinic(client, tenant)  # open all day: the reply is not held for quiet hours
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family", "name": "Maria Lopez"}
    photo_url = graph.add_media(PHOTO, "image/jpeg")
    attachments = [{"type": "image", "payload": {"url": photo_url}}]
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="", attachments=attachments)
    [row] = inbound_of(db, tenant.id)
    [message] = thread(client, tenant, row.lead_id)["items"]
    [shown] = message["media"]
    assert shown["kind"] == "image" and photo_url not in shown["url"]
    fetched = media_of(client, tenant, shown["url"])
    assert fetched.status_code == 200 and fetched.data == PHOTO and fetched.mimetype == "image/jpeg"

    with file_server() as files, thread_worker(app):
        image = files.add("/smile.jpg", "image/jpeg", size=2 * MB)
        resp = reply(client, tenant, row.lead_id, {"channel": "instagram", "media_url": image})
        assert resp.status_code == 201, resp.get_json()
        wait_for(lambda: len(graph.sent) == 1, timeout=60)
    assert graph.sent[0]["attachment"] == {"type": "image", "payload": {"url": image}}


def test_twilio_credentials_go_only_to_the_accounts_media_path(client, tenant, providers):
    """Issue 73 #11: a MediaUrl on the SMS API's host but not a media item of the account (its
    message list) is not fetched: no request reaches the API with the account's credentials, and
    the coordinator gets no account data."""
    provider, settings = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    listing = f"{settings.sms_api_url}/Accounts/{settings.sms_account}/Messages.json"
    assert signed_post(client, INBOUND, mms("look", "MMc1", (listing, "image/png"))).status_code == 200
    [message] = thread(client, tenant, lead["id"])["items"]
    resp = media_of(client, tenant, message["media"][0]["url"])
    assert resp.status_code == 502 and resp.get_json()["code"] == "media_unavailable"
    assert provider.lookups == 0  # the stand-in never listed the account's messages


@pytest.fixture
def rebinding_dns(monkeypatch):
    """A name whose DNS answer changes after its first lookup (DNS rebinding): 127.0.0.1 first, then
    127.0.0.2, where an 'internal' server listens. No DNS server can be run here without changing the
    machine's resolver, so the lookup function answers for that one name; every other name resolves
    as usual."""
    real = socket.getaddrinfo
    answers = ["127.0.0.1"]

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "files.rebinding.test":
            return real(host, port, *args, **kwargs)
        address = answers[0]
        answers[0] = "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return "files.rebinding.test"


def test_an_outbound_media_url_is_asked_at_the_address_that_was_checked(
    client, tenant, providers, rebinding_dns
):
    """Issue 73 #10: the HEAD goes to the address the check resolved, not to a second lookup's."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server("127.0.0.1") as public, file_server("127.0.0.2", public.port) as internal:
        public.add("/smile.jpg", "image/jpeg", size=90_000)
        internal.add("/smile.jpg", "text/html", size=10)
        url = f"http://{rebinding_dns}:{public.port}/smile.jpg"
        resp = reply(client, tenant, lead["id"], {"channel": "sms", "body": "Look", "media_url": url})
    assert resp.status_code == 201, resp.get_json()
    assert public.requests == [("HEAD", "/smile.jpg")] and internal.requests == []


def test_an_unreadable_media_url_gets_one_answer_whatever_the_reason(
    app, client, tenant, providers, monkeypatch
):
    """Issue 73 #10: a 404, a closed port and a refused address read the same to the user: the
    answers cannot map the internal network."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    with file_server() as gone:
        closed = f"{gone.base}/smile.jpg"  # its server is stopped below: the port is closed
    answers = [reply(client, tenant, lead["id"], {"channel": "sms", "media_url": closed}, key="closed")]
    with file_server() as files:
        missing = f"{files.base}/nothing-here.jpg"
        answers.append(reply(client, tenant, lead["id"], {"channel": "sms", "media_url": missing}, key="404"))
        refused = files.add("/smile.jpg", "image/jpeg", size=1000)
        monkeypatch.setattr(app.config["SETTINGS"], "webhook_allow_private_addresses", False)
        answers.append(reply(client, tenant, lead["id"], {"channel": "sms", "media_url": refused}, key="ip"))
        assert files.requests == [("HEAD", "/nothing-here.jpg")]  # the refused address was never asked
    texts = {str(answer.get_json()["errors"]["json"]["media_url"]) for answer in answers}
    assert [answer.status_code for answer in answers] == [422, 422, 422] and len(texts) == 1, texts
