"""The guard of a signed capture endpoint (a web form, inbound messages and calls, appointments from a
practice system): the request is refused before its body is parsed unless a signing secret of its
clinic signed it with the endpoint's scope. Auth's, beside the secrets it checks, so that every domain
with a signed endpoint imports it from here."""

from __future__ import annotations

import functools

from flask import current_app, g, request

from app.domains.auth import signing
from app.domains.auth.signing_secrets import service as signing_secrets
from app.platform.api.injection import inject


def signed_for(scope: str):
    """Refuse (401) a request not signed by a secret of its clinic, or (403) one signed by a secret
    without `scope`, before its body is parsed; the signing clinic's id is then `g.signed_clinic_id`.
    The capture endpoints (web forms, inbound messages, calls, appointments) each name their scope."""

    def decorate(view):
        @inject
        def verify(*, uow, now) -> None:  # in a unit of its own, committed before the view's
            g.signed_clinic_id = signing_secrets.verify(
                session=uow,
                redis=current_app.extensions["followup.redis"],
                signed=signing_secrets.SignedRequest(
                    key_id=request.headers.get(signing.KEY_ID_HEADER),
                    clinic_ref=request.headers.get(signing.CLINIC_HEADER),
                    timestamp=request.headers.get(signing.TIMESTAMP_HEADER),
                    signature=request.headers.get(signing.SIGNATURE_HEADER),
                    method=request.method,
                    path=request.path,
                    raw_body=request.get_data(cache=True),
                ),
                scope=scope,
                now=now,
            )

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            verify()
            return view(*args, **kwargs)

        return wrapper

    return decorate
