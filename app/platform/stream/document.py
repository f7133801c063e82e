"""How `GET /api/me/events` (the stream process, app/streaming) is described in openapi.json.

The stream is served by its own process, on its own port (`make run`: 5001; FOLLOWUP_STREAM_URL
tells browsers where), not by the API's server: its operation carries a `servers` entry of its own.
Its answer is `text/event-stream`: each event's SSE `event:` field is its type, `id:` its id (what
Last-Event-ID resumes from) and `data:` the JSON {id, type, at, ...the type's fields}, shaped by the
reader's PHI policy as every answer is. EVENT_TYPES lists every type the engine sends
(tests/stream/test_stream_document.py checks it against the code that records them).
"""

from __future__ import annotations

PATH = "/api/me/events"

EVENT_TYPES: dict[str, str] = {
    "lead.assigned": "a lead was assigned to you: {lead}",
    "task.assigned": "a task was assigned to you: {task, lead, notification}",
    "task.claimed": "a colleague claimed a task of a shared queue: {task, ...}",
    "task.due_soon": "a task of yours is due soon: {task, lead, notification}",
    "task.overdue": "a task of yours is overdue: {task, lead, notification}",
    "sla.warning": "a lead's response clock is about to run out: {lead, notification}",
    "sla.breach": "a lead's response clock ran out: {lead, notification}",
    "notification": "any other in-app notification: {notification, ...}",
    "reply.received": "a family replied to a lead of yours: {lead, activity}",
    "conversation.message": "a new message in a thread of yours: {lead_id, conversation_id, message_id, "
    "channel, direction, notification_id} (never its text)",
    "conversation.status": "a provider's delivery receipt changed a message of a thread of yours: "
    "{lead_id, conversation_id, message_id, status, failure_reason}",
    "conversation.read": "you read a thread (on another device too): {lead_id, conversation_id, "
    "last_read_message_id}",
    "reset": "what you missed is past the stream's retention or too much to replay: reload, then "
    "resume from this id",
}

EVENT_ID = {"type": "string", "pattern": "^[0-9]{1,10}$", "description": "an event's id"}

STREAM_SERVER = {
    "url": "{stream}",
    "description": "The stream process's own server (its own port; behind a proxy, the API's origin)",
    "variables": {
        "stream": {
            "default": "http://localhost:5001",
            "description": "FOLLOWUP_STREAM_URL without its path",
        }
    },
}


def _event_schema() -> dict:
    return {
        "type": "object",
        "required": ["id", "type", "at"],
        "properties": {
            "id": {
                "type": "integer",
                "description": "the event's id: the SSE id, what Last-Event-ID resumes",
            },
            "type": {"type": "string", "enum": sorted(EVENT_TYPES)},
            "at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": True,
    }


def operation() -> dict:
    """The GET operation of PATH, with its own server."""
    kinds = "\n".join(f"- `{kind}`: {meaning}" for kind, meaning in sorted(EVENT_TYPES.items()))
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "tags": ["Event stream"],
        "operationId": "streamMyEvents",
        "summary": "My live events (Server-Sent Events)",
        "description": "Each user's live events, served by the stream process (its own server, "
        "below). Authenticate with `Authorization: Bearer <access token>` or, from a browser's "
        "EventSource, `?token=` (a stream token: POST /api/me/stream-token). Resume with the "
        "`Last-Event-ID` header or `?last_event_id=`. A comment (`: ping`) comes every heartbeat; the "
        "stream ends after its longest life and the client resumes. Each event's SSE `event` is its "
        "type and its `data` the JSON below, without PHI for a reader without `lead:phi`. "
        "Types:\n" + kinds,
        "servers": [STREAM_SERVER],
        "security": [{"bearerAuth": []}, {}],
        "parameters": [
            {"name": "token", "in": "query", "schema": {"type": "string"}, "description": "a stream token"},
            # Digits, as the stream reads them (anything else: a 400 naming it, not a 422).
            {
                "name": "last_event_id",
                "in": "query",
                "schema": EVENT_ID,
                "description": "resume after this event (EventSource sends Last-Event-ID itself)",
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "schema": EVENT_ID,
                "description": "resume after this event",
            },
        ],
        "responses": {
            "200": {
                "description": "The stream: `text/event-stream`, each event's data as this schema",
                "content": {"text/event-stream": {"schema": _event_schema()}},
            },
            "400": {"description": "Last-Event-ID is not an event id", "content": error},
            "401": {"description": "Missing, invalid or expired credentials", "content": error},
            "403": {
                "description": "An API key: the stream is a user's; or a clinic admin without the second "
                "factor their clinic requires (`second_factor_enrollment_required`)",
                "content": error,
            },
            "503": {"description": "Redis or the database is briefly unreachable", "content": error},
        },
    }
