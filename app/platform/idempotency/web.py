"""The `idempotent` view decorator: honours an Idempotency-Key header on a POST (the Flask side of
service.py, which explains the protocol)."""

from __future__ import annotations

import functools
from datetime import timedelta

from flask import Response, request

from app.platform import clock
from app.platform.access import current_actor
from app.platform.api.contract import IDEMPOTENCY_MARK
from app.platform.app_db import get_db
from app.platform.idempotency import service


def idempotent(view):
    """View decorator (below `requires`): honour an Idempotency-Key header on a POST.

    The view is given the unit of work it writes in (`uow=`): with a key, the answer is stored in
    that same unit, so both commit together; without one, the unit is done once more if the
    database dropped its connection before the commit (`Database.run`)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(service.HEADER)
        if key is None:
            return get_db().run(lambda uow: view(*args, uow=uow, **kwargs))
        actor, now = current_actor(), clock.now()
        digest = service.request_hash(
            method=request.method, path=request.path, query=request.query_string, body=request.get_data()
        )
        db = get_db()
        lease = timedelta(seconds=db.settings.idempotency_lease_seconds)
        keyed = service.KeyedRequest(
            actor=actor, key=key, method=request.method, path=request.path, digest=digest
        )
        with db.unit_of_work() as session:
            stored = service.reserve(session=session, request=keyed, lease=lease, now=now)
            if stored is not None:
                replay = Response(
                    stored.response_body,
                    status=stored.response_status,
                    content_type=stored.response_content_type,
                )
                replay.headers[service.REPLAYED_HEADER] = "true"
                return replay
        reservation = service.Reservation(actor=actor, key=key, reserved_at=now)
        try:
            # The view's writes and the answer stored under the key commit together: a connection
            # lost or a process dead in between leaves neither, and the reservation is taken over.
            with db.unit_of_work() as session:
                response = view(*args, uow=session, **kwargs)
                if response.status_code >= 500:
                    raise _NotAnswered(response)  # roll its writes back, as for an exception
                service.complete(
                    session=session, reservation=reservation, status=response.status_code,
                    body=response.get_data(as_text=True), content_type=response.content_type, now=clock.now(),
                )  # fmt: skip
        except BaseException as failure:
            with db.unit_of_work() as session:
                service.release(session=session, reservation=reservation)
            if isinstance(failure, _NotAnswered):
                return failure.response
            raise
        return response

    setattr(
        wrapper, IDEMPOTENCY_MARK, True
    )  # the OpenAPI document names the header (app/platform/api/contract.py)
    return wrapper


class _NotAnswered(Exception):
    """A view's 5xx answer: its writes are rolled back and the key freed, as after an exception."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response
