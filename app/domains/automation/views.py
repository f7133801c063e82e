"""Automation endpoints: follow-up rules (CRUD, versions, test, simulate) and a lead's why-trail."""

from flask.views import MethodView

from app.domains.automation import schemas, service, simulation, stats, why_trail
from app.platform.access import requires
from app.platform.api import check_if_match, make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("automation", "Follow-up rules and the why-trail of automated steps")


@blp.route("/follow-up-rules")
class Rules(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleOut(many=True))
    @inject
    def get(self, *, uow, actor, now, wiring):
        """The clinic's rules (the defaults included), in the order they are evaluated."""
        seeded = wiring.caches.seeded_clinics
        return service.list_rules(session=uow, clinic_id=actor.clinic_id, now=now, seeded=seeded)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RuleCreateIn)
    @blp.response(201, schemas.RuleOut)
    @inject
    def post(self, body, *, uow, actor, now):
        """Add a rule. An unknown trigger, field, operator or action type is a 422 naming it."""
        return service.create_rule(session=uow, actor=actor, data=body, now=now)


@blp.route("/follow-up-rules/stats")
class RuleStats(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.StatsArgs, location="query")
    @blp.response(200, schemas.RuleStatsOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """Per rule: runs, steps by status (done, skipped, failed, ...), skipped steps by reason, last run."""
        return stats.rule_stats(
            session=uow,
            clinic_id=actor.clinic_id,
            start=args.get("start"),
            end=args.get("end"),
        )


@blp.route("/follow-up-rules/active")
class ActiveRules(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleOut(many=True))
    @inject
    def get(self, *, uow, actor, now, wiring):
        """The rules that fire now, in evaluation order."""
        seeded = wiring.caches.seeded_clinics
        return service.list_rules(
            session=uow, clinic_id=actor.clinic_id, now=now, seeded=seeded, active_only=True
        )


@blp.route("/follow-up-rules/<int:rule_id>")
class RuleById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleOut)
    @inject
    def get(self, rule_id, *, uow, actor):
        """One rule, at its current version (ETag for If-Match)."""
        rule = service.get_rule(session=uow, clinic_id=actor.clinic_id, rule_id=rule_id)
        return with_etag(rule, schemas.RuleOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RuleUpdateIn)
    @blp.response(200, schemas.RuleOut)
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def patch(self, body, rule_id, *, uow, actor, now):
        """Edit a rule: a new version. Steps already scheduled keep the version that made them."""
        check_if_match(
            service.get_rule(session=uow, clinic_id=actor.clinic_id, rule_id=rule_id),
            schemas.RuleOut(),
        )
        rule = service.update_rule(session=uow, actor=actor, rule_id=rule_id, changes=body, now=now)
        return with_etag(rule, schemas.RuleOut())

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, rule_id, *, uow, actor, now):
        """Delete a rule: it stops firing and its pending steps are cancelled; its history stays."""
        service.delete_rule(session=uow, actor=actor, rule_id=rule_id, now=now)


@blp.route("/follow-up-rules/<int:rule_id>/versions")
class RuleVersions(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleVersionOut(many=True))
    @inject
    def get(self, rule_id, *, uow, actor):
        """Every version of a rule, newest first."""
        return service.rule_versions(session=uow, clinic_id=actor.clinic_id, rule_id=rule_id)


@blp.route("/follow-up-rules/<int:rule_id>/test")
class TestRule(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RuleTestIn)
    @blp.response(200, schemas.RuleTestOut)
    @inject
    def post(self, body, rule_id, *, uow, actor, now):
        """Evaluate the rule against a sample lead and event: each condition with the value it saw and
        its result, and the actions with their computed times. Changes nothing."""
        answer = simulation.try_rule(session=uow, actor=actor, rule_id=rule_id, sample=body, now=now)
        uow.rollback()  # nothing a test reads may be written, not even lazily seeded defaults
        return answer


@blp.route("/follow-up-rules/<int:rule_id>/simulate")
class SimulateRule(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SimulateArgs, location="query")
    @blp.response(200, schemas.SimulateOut)
    @inject
    def post(self, args, rule_id, *, uow, actor, now):
        """Replay the rule over the clinic's events of the last `days` days: what it would have made,
        per day and per coordinator. Changes nothing."""
        answer = simulation.simulate_rule(
            session=uow, actor=actor, rule_id=rule_id, days=args["days"], now=now
        )
        uow.rollback()
        return answer


@blp.route("/leads/<int:lead_id>/automation")
class WhyTrail(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.WhyTrailOut)
    @inject
    def get(self, lead_id, *, uow, actor, now):
        """The lead's automated steps, pending and past, each with its rule (and version) or sequence,
        the event and the conditions as evaluated; what the contact policy held back; and the
        attempts since the last contact, with those that count toward the break-up."""
        return why_trail.lead_automation(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id, now=now)
