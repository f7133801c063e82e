"""schemathesis against /api/openapi.json, as a clinic admin: every operation, all checks.

A short, deterministic run: derandomized (the same cases each run, so CI never fails on a new
random draw), the fuzzing phase only, MAX_EXAMPLES cases per operation, about a minute on a
2-core machine. `make fuzz` (bench/fuzz.py) runs a long random one with every phase (coverage's
boundary values, stateful sequences) against a real local server.

The app is called in-process through WSGI: no port and no server thread, the same app and
database as the rest of the suite, and a failure's traceback lands in this process' log.

Zero 5xx and zero schema violations: a response the OpenAPI document does not describe (status
code, body, content type, headers) fails here, and every error answer carries a `code` of
app/platform/errors.py's ERROR_CODES. Shared error answers are documented in one place (app/platform/api
`error_responses`, app/platform/api/contract.py); a view documents its own domain answers with
`@blp.alt_response`.

Random ids mostly reach 404s. A domain whose answers depend on its records' states fuzzes its own
operations against real records in each state, with these same checks: the consultations and
recalls in tests/consultations/test_contract.py (their 409s).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.openapi.checks import UndefinedStatusCode

from app.devtools.fuzzing import KeptUser
from app.devtools.instagram import GraphStandIn
from app.platform.errors import ERROR_CODES
from app.platform.stream import document as stream_document
from tests.outbound.kit import use

MAX_EXAMPLES = 10

# Every check is on. A request the schema allows may still break a business rule, which
# positive_data_acceptance must take as an answer: a wrong token or current password (400), another
# clinic's or a missing record (404), a state that refuses it (409, 410), a stale If-Match (412), two
# exclusive fields or a rule across fields (422), a throttle (429). What it still fails: a valid
# request answered 405, 406, 413, 414, 415, 431 or 5xx.
VALID_BUT_REFUSED = ["2XX", "400", "401", "403", "404", "409", "410", "412", "422", "429"]
# An invalid request may also be refused for its length before its fields are read: a query string
# longer than the request line allows (414) is as much a refusal as a 422 naming the field.
TOO_LONG_TO_READ = "414"
EXCLUDED_CHECKS: list = []


@pytest.fixture
def admin(db, tenant) -> KeptUser:
    return KeptUser(db, tenant.users["clinic_admin"].id)


@pytest.fixture
def graph(app, monkeypatch):
    """Meta's Graph API as the local stand-in: connecting Instagram asks it whose the token is (an
    unreachable Graph would answer 503 to every valid connection)."""
    stand_in = GraphStandIn().start()
    use(monkeypatch, app.config["SETTINGS"], instagram_graph_url=stand_in.url)
    yield stand_in
    stand_in.stop()


@pytest.fixture
def openapi(app, tenant, graph):
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    loaded.config.phases.coverage.enabled = False  # thousands of cases: make fuzz runs it
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=VALID_BUT_REFUSED
    )
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, TOO_LONG_TO_READ]
    return loaded


# The event stream is documented in the same contract but served by the stream process, on its own
# server (its `servers` entry), not by this app: tests/stream/test_stream_document.py checks it there.
schema = schemathesis.pytest.from_fixture("openapi").exclude(path=stream_document.PATH)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,  # nothing to replay from a previous run: the same cases every run
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, tenant, admin):
    admin.restore()  # a previous case may have deactivated or demoted it (PUT /api/users/:id)
    answer = Response.from_any(
        case.call_and_validate(headers=tenant.headers(), excluded_checks=EXCLUDED_CHECKS)
    )
    # /readyz's 503 names its checks instead; a page a person opens (the unsubscribe link) answers a
    # page, which the content-type check above held against the document.
    page = answer.headers.get("content-type", [""])[0].startswith("text/html")
    if answer.status_code >= 400 and case.path != "/readyz" and not page:
        assert answer.json()["code"] in ERROR_CODES, answer.text


def test_an_undocumented_status_fails_the_check(app, client, tenant):
    """The run would catch a status the document leaves out: here getLead's 404, removed."""
    document = client.get("/api/openapi.json").get_json()
    del document["paths"]["/api/leads/{lead_id}"]["get"]["responses"]["404"]
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = app
    case = loaded["/api/leads/{lead_id}"]["GET"].Case(path_parameters={"lead_id": 999_999})
    with pytest.raises(FailureGroup) as found:
        case.call_and_validate(headers=tenant.headers(), excluded_checks=EXCLUDED_CHECKS)
    assert [type(failure) for failure in found.value.exceptions] == [UndefinedStatusCode]
