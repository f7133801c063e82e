"""Step variants: a stable, weighted choice per lead; judged on bookings and conversions; one kept."""

from __future__ import annotations

from collections import Counter

from app.domains.sequences import variants
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    lead_with,
    make_sequence,
    messages_to,
    process_events,
    steps_of,
)

PHONE = "(415) 555-2671"
AB = [{"key": "A", "weight": 3, "body": "Hi {{ first_name }}, version A"}, {"key": "B", "body": "Version B"}]


def _sms_with_variants(variants_=AB) -> dict:
    return {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "variants": variants_}


def test_assignment_is_stable_and_split_by_weight_over_1000_leads():
    chosen = [variants.pick(AB, lead_id=lead_id, sequence_id=7, index=0)["key"] for lead_id in range(1, 1001)]
    again = [variants.pick(AB, lead_id=lead_id, sequence_id=7, index=0)["key"] for lead_id in range(1, 1001)]
    assert chosen == again
    share = Counter(chosen)["A"] / 1000
    assert 0.70 <= share <= 0.80  # weight 3 of 4, within sampling noise
    other_step = [variants.pick(AB, lead_id=i, sequence_id=7, index=1)["key"] for i in range(1, 1001)]
    assert other_step != chosen  # another step draws afresh


def test_a_lead_gets_its_variant_through_the_api_and_keeps_it(app, client, db, tenant):
    configure_clinic(client, tenant)
    sequence = make_sequence(client, tenant, [_sms_with_variants()])
    assert [v["key"] for v in sequence["steps"][0]["variants"]] == ["A", "B"]
    lead = lead_with(client, tenant, phone=PHONE)
    made = enroll(client, tenant, lead["id"], sequence["id"])
    expected = variants.pick(AB, lead_id=lead["id"], sequence_id=sequence["id"], index=0)
    [step] = steps_of(db, lead["id"])
    assert step.status == "done" and step.action["variant"] == expected["key"]
    [sent] = messages_to(db, lead["id"])
    assert sent.body.endswith("version A" if expected["key"] == "A" else "Version B")
    client.post(f"/api/leads/{lead['id']}/enrollments/{made['id']}/unenroll", headers=tenant.headers())
    enroll(client, tenant, lead["id"], sequence["id"])
    assert {s.action["variant"] for s in steps_of(db, lead["id"])} == {expected["key"]}


def test_variants_are_judged_on_conversion_and_one_can_be_kept(app, client, db, tenant, make_tenant):
    configure_clinic(client, tenant)
    sequence = make_sequence(client, tenant, [_sms_with_variants()])
    leads = [lead_with(client, tenant, phone=PHONE, first_name=f"L{i}") for i in range(6)]
    for lead in leads:
        enroll(client, tenant, lead["id"], sequence["id"])
    by_variant: dict[str, list[int]] = {}
    for lead in leads:
        by_variant.setdefault(steps_of(db, lead["id"])[0].action["variant"], []).append(lead["id"])
    converted = next(iter(by_variant.values()))[0]
    resp = client.post(f"/api/leads/{converted}/convert", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    process_events(app, db)

    url = f"/api/sequences/{sequence['id']}/steps/0/variants"
    report = client.get(url, headers=tenant.headers()).get_json()
    rows = {row["key"]: row for row in report["variants"]}
    assert report["judged_on"] == "conversion" and set(rows) == {"A", "B"}
    assert sum(row["sent"] for row in rows.values()) == 6
    winner = next(k for k, ids in by_variant.items() if converted in ids)
    assert rows[winner]["converted"] == 1 and rows[winner]["best"] is True
    loser = ({"A", "B"} - {winner}).pop()
    if rows[loser]["sent"]:
        assert 0 < rows[loser]["p_value_vs_best"] <= 1
    assert all("reply_rate" in row for row in rows.values())
    assert client.get(url + "?window_days=0", headers=tenant.headers()).status_code == 422

    keep = f"/api/sequences/{sequence['id']}/steps/0/keep-variant"
    assert client.post(keep, json={"key": "Z"}, headers=tenant.headers()).status_code == 422
    other = make_tenant("Other Clinic")
    assert client.post(keep, json={"key": "B"}, headers=other.headers()).status_code == 404
    kept = client.post(keep, json={"key": "B"}, headers=tenant.headers())
    assert kept.status_code == 200, kept.get_json()
    [step] = kept.get_json()["steps"]
    assert step["body"] == "Version B" and not step.get("variants")


def test_bad_variants_are_422_naming_the_field(client, tenant):
    cases = [
        [{"key": "A", "body": "x"}],  # one is no test
        [{"key": "A", "body": "x"}, {"key": "A", "body": "y"}],  # twice the same key
        [{"key": "A", "body": "x"}, {"key": "B"}],  # an SMS variant without its text
        [{"key": "A", "body": "x"}, {"key": "B", "body": "y", "weight": 0}],
    ]
    for case in cases:
        resp = client.post(
            "/api/sequences",
            json={"name": "Bad", "steps": [_sms_with_variants(case)]},
            headers=tenant.headers(),
        )
        assert resp.status_code == 422, case
        assert "variants" in resp.get_json()["errors"]["json"]["steps"]["0"], resp.get_json()
