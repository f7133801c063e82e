from marshmallow import Schema, fields


class InboxArgs(Schema):
    unread = fields.Boolean(load_default=False, metadata={"description": "only unread notifications"})


class InboxItemOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    read_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
