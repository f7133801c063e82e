"""The one check of an email address a request gives (a lead's, a user's, a clinic's sender)."""

from __future__ import annotations

import email_validator
from marshmallow import ValidationError, fields


class Email(fields.Email):
    """An email address an SMTP relay will take: checked by email-validator, not only by pattern
    (an ASCII local part, no quoted local part or IP-literal domain, a domain that can exist on the
    internet: no `.local`, `.test` or bare host). No DNS lookup: a request never waits on one."""

    def _deserialize(self, value, attr, data, **kwargs):
        address = super()._deserialize(value, attr, data, **kwargs)
        try:
            email_validator.validate_email(address, allow_smtputf8=False, check_deliverability=False)
        except email_validator.EmailNotValidError as error:
            raise ValidationError(f"not a deliverable email address: {error}") from error
        return address
