"""The contract holds for consultations and recalls (issue 62 item 5): each 409 they give is in the
OpenAPI document with the Error body, and a real 409 answer matches it (schemathesis, every check);
then the consultation and recall operations are fuzzed with real records in every state, so their
conflicts are reached, not only their 404s."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.core.transport import Response

from app.platform import clock
from app.platform.errors import ERROR_CODES
from tests.consultations.kit import act, book, post_appointment
from tests.leadkit import create_lead
from tests.test_fuzz import EXCLUDED_CHECKS, VALID_BUT_REFUSED

CONSULTATION_PATHS = r"^/api/(leads/\{lead_id\}/(consultations|recalls)|consultations/|recalls/)"
MAX_EXAMPLES = 12


@pytest.fixture
def openapi(app, tenant):
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    loaded.config.phases.coverage.enabled = False
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=VALID_BUT_REFUSED
    )
    return loaded


@pytest.fixture
def records(client, tenant) -> dict:
    """A closed lead with a cancelled consultation and a cancelled recall; an open lead with a
    scheduled consultation and one attended."""
    closed = create_lead(client, tenant, phone="(415) 555-4100")
    cancelled = book(client, tenant, closed["id"], clock.now() + timedelta(days=3))
    act(client, tenant, cancelled["id"], "cancel")
    recall = client.post(
        f"/api/leads/{closed['id']}/recalls", json={"in_months": 6}, headers=tenant.headers("front_desk")
    )
    assert recall.status_code == 201, recall.get_json()
    recall_id = recall.get_json()["id"]
    ended = client.post(f"/api/recalls/{recall_id}/cancel", headers=tenant.headers("front_desk"))
    assert ended.status_code == 200, ended.get_json()
    converted = client.post(f"/api/leads/{closed['id']}/convert", json={}, headers=tenant.headers())
    assert converted.status_code == 200, converted.get_json()
    open_lead = create_lead(client, tenant, phone="(415) 555-4101")
    scheduled = book(client, tenant, open_lead["id"], clock.now() + timedelta(days=4))
    attended = book(client, tenant, open_lead["id"], clock.now())
    act(client, tenant, attended["id"], "check-in")
    return {
        "closed_lead": closed["id"],
        "open_lead": open_lead["id"],
        "cancelled": cancelled["id"],
        "scheduled": scheduled["id"],
        "attended": attended["id"],
        "recall": recall_id,
    }


LATER = {"starts_at": "2031-05-04T10:00:00+00:00"}
# (method, path, its ids from `records`, body): each refused with a 409 in the records' states.
CONFLICTS = [
    ("POST", "/api/leads/{lead_id}/consultations", {"lead_id": "closed_lead"}, LATER, "lead_closed"),
    ("PUT", "/api/consultations/{consultation_id}", {"consultation_id": "cancelled"}, LATER, None),
    ("POST", "/api/consultations/{consultation_id}/cancel", {"consultation_id": "attended"}, None, None),
    ("POST", "/api/consultations/{consultation_id}/check-in", {"consultation_id": "cancelled"}, {}, None),
    ("POST", "/api/consultations/{consultation_id}/no-show", {"consultation_id": "cancelled"}, None, None),
    ("POST", "/api/leads/{lead_id}/recalls", {"lead_id": "closed_lead"}, {"in_months": 6}, "lead_closed"),
    ("POST", "/api/recalls/{recall_id}/cancel", {"recall_id": "recall"}, None, None),
]


@pytest.mark.parametrize(
    ("method", "path", "ids", "body", "code"), CONFLICTS, ids=[f"{m} {p}" for m, p, *_ in CONFLICTS]
)
def test_each_409_is_documented_and_a_real_one_matches_it(
    client, tenant, openapi, records, method, path, ids, body, code
):
    document = client.get("/api/openapi.json").get_json()
    documented = document["paths"][path][method.lower()]["responses"]["409"]
    assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    operation = openapi[path][method]
    kwargs = {"path_parameters": {name: records[key] for name, key in ids.items()}}
    if body is not None:
        kwargs["body"] = body
    # Every check: an undocumented status or a body off its schema fails here.
    answer = operation.Case(**kwargs).call_and_validate(
        headers=tenant.headers(), excluded_checks=EXCLUDED_CHECKS
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == (code or "invalid_transition")


def test_the_webhooks_409_for_a_closed_lead_is_documented(client, tenant, openapi, records):
    event = {
        "external_id": "pms-closed",
        "status": "booked",
        "occurred_at": clock.now().isoformat(),
        "starts_at": (clock.now() + timedelta(days=2)).isoformat(),
        "lead_id": records["closed_lead"],
    }
    answer = post_appointment(client, tenant.clinic, event)
    assert answer.status_code == 409 and answer.get_json()["code"] == "lead_closed"
    case = openapi["/api/capture/appointment"]["POST"].Case(body=event)
    case.validate_response(answer, excluded_checks=EXCLUDED_CHECKS)  # raises when it breaks the document


fuzzed = schemathesis.pytest.from_fixture("openapi").include(path_regex=CONSULTATION_PATHS)
TURNS = itertools.count()


@fuzzed.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_consultation_and_recall_operations_answer_as_documented(case, tenant, records):
    """Fuzzed bodies and queries against real records: each path id is, in turn, the closed lead or
    the open one, a cancelled, scheduled or attended consultation, the cancelled recall (or an
    unknown id), so the 409s and 200s are reached as well as the 404s."""
    turn = next(TURNS)
    choices = {
        "lead_id": (records["closed_lead"], records["open_lead"]),
        "consultation_id": (records["cancelled"], records["scheduled"], records["attended"]),
        "recall_id": (records["recall"],),
    }
    for name in case.path_parameters or {}:
        options = choices.get(name)
        if options and turn % 4:  # every fourth case keeps the fuzzer's own id (a 404 mostly)
            case.path_parameters[name] = options[turn % len(options)]
    answer = Response.from_any(
        case.call_and_validate(headers=tenant.headers(), excluded_checks=EXCLUDED_CHECKS)
    )
    if answer.status_code >= 400:
        assert answer.json()["code"] in ERROR_CODES, answer.text
