"""Request and response schemas of webhooks."""

from marshmallow import ValidationError, fields, validate, validates

from app.domains.bulk.events import BulkCompleted
from app.domains.leads.events import LeadCreated
from app.domains.pipeline.events import LeadConverted, LeadLost
from app.domains.tasks.events import TaskOverdue
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema
from app.platform.delivery import addresses

# The events a clinic's server may subscribe to (each delivered by webhooks.enqueue_deliveries).
EVENT_TYPES = tuple(
    event.NAME for event in (LeadCreated, LeadConverted, LeadLost, TaskOverdue, BulkCompleted)
)


class WebhookIn(RequestSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
    )
    description = fields.String(allow_none=True, validate=validate.Length(max=200))

    @validates("url")
    def _http_url(self, value, **_):
        problem = addresses.url_problem(value)
        if problem:
            raise ValidationError(problem)


class WebhookOut(AnswerSchema):
    id = fields.Integer()
    url = fields.String()
    event_types = fields.List(fields.String())
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


class WebhookCreatedOut(WebhookOut):
    secret = fields.String(metadata={"description": "HMAC-SHA256 key of the signatures; shown only now"})


class WebhookDeliveryOut(AnswerSchema):
    id = fields.Integer()
    subscription_id = fields.Integer()
    event_id = fields.Integer()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    response_status = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
