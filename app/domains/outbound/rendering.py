"""Rendering of message templates (app/domains/outbound/templates) per channel."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.domains.outbound.models import Channel

_TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a missing context value is a bug to see, not a blank in a patient's email
    keep_trailing_newline=False,
)


def render(template: str, channel: str, context: dict) -> tuple[str, str, str | None]:
    """(subject, text, html) of a template for a channel; an SMS has only the text (`<name>.sms.txt`)."""
    if channel in (Channel.SMS, Channel.INSTAGRAM, Channel.WHATSAPP):  # text only: `<name>.<channel>.txt`
        text = _TEMPLATES.get_template(f"{template}.{channel}.txt").render(context).strip()
        return text[:300], text, None
    subject = " ".join(_TEMPLATES.get_template(f"{template}.subject.txt").render(context).split())
    text = _TEMPLATES.get_template(f"{template}.txt").render(context)
    html = _TEMPLATES.get_template(f"{template}.html").render(context)
    return subject, text, html
