"""The Settings pages of what the clinic connects (issue 77 item 2): its channels (the SMS number,
email domain and WhatsApp sender the platform operator set up for it, its Instagram account), its
website's form and its webhooks. Routes on the Settings blueprint, drawn and changed as the other
steps' (pages.py); a secret made here is shown on the page that made it, once."""

from __future__ import annotations

from app.console.auth import page
from app.console.settings import changes
from app.console.settings.pages import act, blp, draw
from app.platform.app_db import get_db
from app.platform.roles import Permission


@blp.route("/channels")
@page(Permission.CONFIGURE)
def channels():
    return draw("channels")


@blp.route("/channels/sms", methods=["POST"])
@page(Permission.CONFIGURE)
def choose_sms_sender():
    config = get_db().settings
    return act(
        "channels", "sms", lambda s, c: changes.choose_sms_sender(session=s, change=c, config=config),
        "Saved: your texts go from the sender you chose.",
    )  # fmt: skip


@blp.route("/channels/email", methods=["POST"])
@page(Permission.CONFIGURE)
def save_email_sender():
    config = get_db().settings
    return act(
        "channels", "email", lambda s, c: changes.save_email_sender(session=s, change=c, config=config),
        "Saved: your emails go from this address.",
    )  # fmt: skip


@blp.route("/channels/whatsapp", methods=["POST"])
@page(Permission.CONFIGURE)
def choose_whatsapp_sender():
    config = get_db().settings
    return act(
        "channels", "whatsapp",
        lambda s, c: changes.choose_whatsapp_sender(session=s, change=c, config=config),
        "Saved: your WhatsApp messages go from the sender you chose.",
    )  # fmt: skip


@blp.route("/channels/instagram", methods=["POST"])
@page(Permission.CONFIGURE)
def connect_instagram():
    config = get_db().settings
    return act(
        "channels", "instagram", lambda s, c: changes.connect_instagram(session=s, change=c, settings=config),
        "Instagram connected: messages to the account now reach your inbox.",
    )  # fmt: skip


@blp.route("/channels/instagram/disconnect", methods=["POST"])
@page(Permission.CONFIGURE)
def disconnect_instagram():
    return act(
        "channels", "instagram", lambda s, c: changes.disconnect_instagram(session=s, change=c),
        "Instagram disconnected: messages to the account no longer reach you here.",
    )  # fmt: skip


def _secret_once(row) -> dict:
    return {"made": {"name": row.name, "key_id": row.key_id, "secret": row.secret}}


@blp.route("/forms")
@page(Permission.CONFIGURE)
def forms():
    return draw("forms")


@blp.route("/forms/secrets", methods=["POST"])
@page(Permission.CONFIGURE)
def make_form_secret():
    return act(
        "forms", "secret", lambda s, c: changes.make_form_secret(session=s, change=c),
        "Secret made. Copy it now: it is shown this once.", show=_secret_once,
    )  # fmt: skip


@blp.route("/forms/secrets/<int:secret_id>/replace", methods=["POST"])
@page(Permission.CONFIGURE)
def replace_form_secret(secret_id: int):
    return act(
        "forms", "secrets",
        lambda s, c: changes.replace_form_secret(session=s, secret_id=secret_id, change=c),
        "New secret made. Copy it now: it is shown this once. The old one keeps working for a day.",
        show=_secret_once,
    )  # fmt: skip


@blp.route("/forms/secrets/<int:secret_id>/revoke", methods=["POST"])
@page(Permission.CONFIGURE)
def revoke_form_secret(secret_id: int):
    return act(
        "forms", "secrets",
        lambda s, c: changes.revoke_form_secret(session=s, secret_id=secret_id, change=c),
        "Secret stopped: inquiries signed with it are refused from now on.",
    )  # fmt: skip


@blp.route("/webhooks")
@page(Permission.CONFIGURE)
def webhooks():
    return draw("webhooks")


@blp.route("/webhooks", methods=["POST"])
@page(Permission.CONFIGURE)
def add_webhook():
    config = get_db().settings
    return act(
        "webhooks", "webhook", lambda s, c: changes.add_webhook(session=s, change=c, settings=config),
        "Webhook added. Copy its secret now: it is shown this once.",
        show=lambda made: {"made": {"url": made["url"], "secret": made["secret"]}},
    )  # fmt: skip


@blp.route("/webhooks/<int:webhook_id>/remove", methods=["POST"])
@page(Permission.CONFIGURE)
def remove_webhook(webhook_id: int):
    return act(
        "webhooks", "webhook-list",
        lambda s, c: changes.remove_webhook(session=s, webhook_id=webhook_id, change=c),
        "Webhook removed: nothing more is sent to it.",
    )  # fmt: skip
