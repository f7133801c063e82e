"""0050: the seeded "pending decision: check in" (one call after 7 days) becomes the weekly follow-up,
and speed to lead leaves urgent leads to the urgent call, in clinics that never edited them; a
clinic's own edit stays as the clinic left it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.platform import migrate
from app.platform.db import make_engine
from tests.test_migrations import empty_database  # noqa: F401 (the fixture: a database of its own)

PENDING = {"field": "event.new_stage", "operator": "equals", "value": "pending_decision"}
ONE_CHECK_IN = [
    {
        "type": "create_task",
        "title": "Check in on the treatment decision",
        "delay": {"amount": 7, "unit": "days"},
        "deferred": True,
        "recheck": {"stages": ["pending_decision"], "same_stay": True},
    }
]


def test_an_unedited_check_in_becomes_weekly_and_an_edited_one_stays(empty_database):  # noqa: F811
    from app.domains.auth.models import Clinic
    from app.domains.automation.models import AutomationRule, AutomationRuleVersion

    now = datetime.now(UTC)
    migrate.upgrade(empty_database, "0047_i58_signing_secrets")
    engine = make_engine(empty_database)
    rules = AutomationRule.__table__
    try:
        with engine.begin() as conn:
            clinic_ids = [
                conn.execute(
                    sa.insert(Clinic.__table__)
                    .values(name=name, settings={}, webhook_secret="s", created_at=now, updated_at=now)
                    .returning(Clinic.__table__.c.id)
                ).scalar()
                for name in ("Seeded", "Edited")
            ]
            common = {
                "name": "Pending decision: check in",
                "trigger": "lead.stage_changed",
                "conditions": [PENDING],
                "actions": ONE_CHECK_IN,
                "priority": 50,
                "stop_processing": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
                "created_by": "system",
                "default_key": "pending_decision_check_in",
            }
            conn.execute(
                sa.insert(rules),
                [
                    {**common, "clinic_id": clinic_ids[0], "version": 1, "updated_by": "system"},
                    {**common, "clinic_id": clinic_ids[1], "version": 2, "updated_by": "user:7"},
                    {
                        **common,
                        "clinic_id": clinic_ids[0],
                        "name": "Speed to lead: initial contact",
                        "trigger": "lead.created",
                        "conditions": [],
                        "default_key": "speed_to_lead",
                        "version": 1,
                        "updated_by": "system",
                    },
                ],
            )
        migrate.upgrade(empty_database)
        with engine.connect() as conn:
            every = conn.execute(sa.select(rules)).all()
            got = {r.clinic_id: r for r in every if r.default_key == "pending_decision_check_in"}
            [speed] = [r for r in every if r.default_key == "speed_to_lead"]
            versions = conn.execute(
                sa.select(AutomationRuleVersion.__table__.c.version).where(
                    AutomationRuleVersion.__table__.c.rule_id == got[clinic_ids[0]].id
                )
            ).scalars()
            assert list(versions) == [2]
        seeded, edited = got[clinic_ids[0]], got[clinic_ids[1]]
        assert seeded.version == 2 and seeded.name == "Pending decision: weekly follow-up"
        [weekly] = seeded.actions
        assert weekly["type"] == "recurring_follow_up"
        assert (weekly["every_days"], weekly["times"], weekly["while_stage"]) == (7, 4, "pending_decision")
        assert edited.version == 2 and edited.actions == ONE_CHECK_IN  # the clinic's edit stays
        assert speed.version == 2
        assert speed.conditions == [{"field": "lead.priority", "operator": "not_equals", "value": "urgent"}]
    finally:
        engine.dispose()
