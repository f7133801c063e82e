"""The base of every response schema: what the engine always sends is `required` in the document.

A generated client (openapi-typescript, openapi-python-client) types a field that is not `required`
as possibly absent, so a frontend would check every field of every answer. Each field of an answer
is therefore required unless it says otherwise: `metadata={"optional": True}` for a field the
engine may leave out, and a PHI field a reader without `lead:phi` is not sent
(app/platform/phi_policy.py). A field that may be null says so with `allow_none=True`.
tests/test_answers_match_the_document.py holds every answer the suite receives to this.
"""

from __future__ import annotations

from marshmallow import Schema


class AnswerSchema(Schema):
    """A response schema: every field required (always sent) unless optional or withheld PHI."""

    @classmethod
    def phi_fields(cls) -> tuple[str, ...]:
        return ()  # PhiSchema's: the fields a reader without `lead:phi` is not sent

    def on_bind_field(self, field_name, field_obj) -> None:
        # `required` only matters when loading, which an answer's schema never does: here it says
        # what the document promises a client.
        sometimes_absent = field_obj.metadata.get("optional") or field_name in self.phi_fields()
        field_obj.required = not sometimes_absent
