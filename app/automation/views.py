"""Automation endpoints: follow-up rules (CRUD, versions, test, simulate) and a lead's why-trail."""

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import check_if_match, make_blueprint, with_etag
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.automation import schemas, service, simulation, stats, why_trail

blp = make_blueprint("automation", "Follow-up rules and the why-trail of automated steps")


@blp.route("/follow-up-rules")
class Rules(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleOut(many=True))
    def get(self):
        """The clinic's rules (the defaults included), in the order they are evaluated."""
        with unit_of_work() as session:
            return service.list_rules(session=session, clinic_id=current_actor().clinic_id, now=clock.now())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RuleCreateIn)
    @blp.response(201, schemas.RuleOut)
    def post(self, body):
        """Add a rule. An unknown trigger, field, operator or action type is a 422 naming it."""
        with unit_of_work() as session:
            return service.create_rule(session=session, actor=current_actor(), data=body, now=clock.now())


@blp.route("/follow-up-rules/stats")
class RuleStats(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.StatsArgs, location="query")
    @blp.response(200, schemas.RuleStatsOut(many=True))
    def get(self, args):
        """Per rule: runs, steps by status (done, skipped, failed, ...), skipped steps by reason, last run."""
        with unit_of_work() as session:
            return stats.rule_stats(
                session=session,
                clinic_id=current_actor().clinic_id,
                start=args.get("start"),
                end=args.get("end"),
            )


@blp.route("/follow-up-rules/active")
class ActiveRules(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleOut(many=True))
    def get(self):
        """The rules that fire now, in evaluation order."""
        with unit_of_work() as session:
            return service.list_rules(
                session=session, clinic_id=current_actor().clinic_id, now=clock.now(), active_only=True
            )


@blp.route("/follow-up-rules/<int:rule_id>")
class RuleById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleOut)
    def get(self, rule_id):
        """One rule, at its current version (ETag for If-Match)."""
        with unit_of_work() as session:
            rule = service.get_rule(session=session, clinic_id=current_actor().clinic_id, rule_id=rule_id)
            return with_etag(rule, schemas.RuleOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RuleUpdateIn)
    @blp.response(200, schemas.RuleOut)
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    def patch(self, body, rule_id):
        """Edit a rule: a new version. Steps already scheduled keep the version that made them."""
        actor = current_actor()
        with unit_of_work() as session:
            check_if_match(
                service.get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id),
                schemas.RuleOut(),
            )
            rule = service.update_rule(
                session=session, actor=actor, rule_id=rule_id, changes=body, now=clock.now()
            )
            return with_etag(rule, schemas.RuleOut())

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    def delete(self, rule_id):
        """Delete a rule: it stops firing and its pending steps are cancelled; its history stays."""
        with unit_of_work() as session:
            service.delete_rule(session=session, actor=current_actor(), rule_id=rule_id, now=clock.now())


@blp.route("/follow-up-rules/<int:rule_id>/versions")
class RuleVersions(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.RuleVersionOut(many=True))
    def get(self, rule_id):
        """Every version of a rule, newest first."""
        with unit_of_work() as session:
            return service.rule_versions(
                session=session, clinic_id=current_actor().clinic_id, rule_id=rule_id
            )


@blp.route("/follow-up-rules/<int:rule_id>/test")
class TestRule(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RuleTestIn)
    @blp.response(200, schemas.RuleTestOut)
    def post(self, body, rule_id):
        """Evaluate the rule against a sample lead and event: each condition with the value it saw and
        its result, and the actions with their computed times. Changes nothing."""
        with unit_of_work() as session:
            answer = simulation.try_rule(
                session=session, actor=current_actor(), rule_id=rule_id, sample=body, now=clock.now()
            )
            session.rollback()  # nothing a test reads may be written, not even lazily seeded defaults
            return answer


@blp.route("/follow-up-rules/<int:rule_id>/simulate")
class SimulateRule(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SimulateArgs, location="query")
    @blp.response(200, schemas.SimulateOut)
    def post(self, args, rule_id):
        """Replay the rule over the clinic's events of the last `days` days: what it would have made,
        per day and per coordinator. Changes nothing."""
        with unit_of_work() as session:
            answer = simulation.simulate_rule(
                session=session, actor=current_actor(), rule_id=rule_id, days=args["days"], now=clock.now()
            )
            session.rollback()
            return answer


@blp.route("/leads/<int:lead_id>/automation")
class WhyTrail(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.WhyTrailOut)
    def get(self, lead_id):
        """The lead's automated steps, pending and past, each with its rule (and version) or sequence,
        the event and the conditions as evaluated; and what the contact policy held back."""
        with unit_of_work() as session:
            return why_trail.lead_automation(
                session=session, clinic_id=current_actor().clinic_id, lead_id=lead_id
            )
