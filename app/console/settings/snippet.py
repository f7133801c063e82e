"""What a clinic pastes on its website to send its inquiries to the engine: the HTML form, and the
few lines of its site's server that sign each inquiry with the website's signing secret and pass it
on to the web-form endpoint (POST /api/capture/web-form, fields of intake.schemas.WebFormIn). The
endpoint takes only signed requests and a page must never hold the secret, so the form posts to the
site's own server, which signs (docs/guides/web-forms.md). Pure: text in, text out."""

from __future__ import annotations

WEB_FORM_PATH = "/api/capture/web-form"
RELAY_FILE = "followup-inquiry.php"  # what the form posts to, on the clinic's own site
KEY_ID_PLACEHOLDER = "YOUR_KEY_ID"
# The form's fields: (WebFormIn's field, the label a family reads, the input's type).
FIELDS = (
    ("name", "Your name", "text"),
    ("email", "Email", "email"),
    ("phone", "Phone", "tel"),
    ("child_name", "Your child's name (if the visit is for them)", "text"),
    ("message", "How can we help?", "textarea"),
)


def endpoint(public_base_url: str) -> str:
    return public_base_url.rstrip("/") + WEB_FORM_PATH


def form_html() -> str:
    """The form for the clinic's contact page."""
    lines = [f'<form method="post" action="/{RELAY_FILE}">']
    for name, label, kind in FIELDS:
        control = (
            f'<textarea name="{name}" rows="4"></textarea>'
            if kind == "textarea"
            else f'<input name="{name}" type="{kind}">'
        )
        lines.append(f"  <label>{label} {control}</label>")
    lines += ['  <button type="submit">Send</button>', "</form>"]
    return "\n".join(lines)


def relay_php(*, public_base_url: str, key_id: str | None) -> str:
    """The site's server side, in PHP (what most clinic websites run on): it signs the inquiry as the
    engine checks it, HMAC-SHA256 of "{timestamp}.POST.{path}.{body}" under the secret, and sends it."""
    fields = ", ".join(f"'{name}'" for name, _, _ in FIELDS)
    return f"""<?php
// {RELAY_FILE}: on your website's server, beside your contact page.
// It signs each inquiry with your website's secret and sends it to the Follow-up Engine.
$keyId  = '{key_id or KEY_ID_PLACEHOLDER}';
$secret = getenv('FOLLOWUP_FORM_SECRET'); // the secret shown once; keep it on the server, never in a page
$path   = '{WEB_FORM_PATH}';
$engine = '{endpoint(public_base_url)}';

$form = ['submission_id' => bin2hex(random_bytes(16)), 'page_url' => $_SERVER['HTTP_REFERER'] ?? ''];
foreach ([{fields}] as $field) {{
    if (isset($_POST[$field]) && trim($_POST[$field]) !== '') $form[$field] = trim($_POST[$field]);
}}
$body = json_encode($form);
$timestamp = (string) time();
$signature = hash_hmac('sha256', "$timestamp.POST.$path.$body", $secret);

$request = curl_init($engine);
curl_setopt_array($request, [
    CURLOPT_POST => true, CURLOPT_POSTFIELDS => $body, CURLOPT_RETURNTRANSFER => true,
    CURLOPT_HTTPHEADER => ['Content-Type: application/json', "X-Followup-Key-Id: $keyId",
        "X-Followup-Timestamp: $timestamp", "X-Followup-Signature: $signature"],
]);
curl_exec($request);
$sent = curl_getinfo($request, CURLINFO_HTTP_CODE) < 300;
header('Location: ' . ($sent ? '/thank-you' : '/contact?not-sent'), true, 303);
"""
