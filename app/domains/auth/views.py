"""Auth endpoints: login, refresh, logout, password setup and change, me, clinic settings, users,
API keys; and the platform operator's new clinics."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from app.domains.auth import api_keys, clinic_schemas, onboarding, schemas, service, sessions, stream_access
from app.domains.auth.login import credentials as logins
from app.domains.auth.login import second_factor
from app.domains.auth.senders import identity as sender_identity
from app.platform.access import platform_only, public, requires
from app.platform.api import check_if_match, make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.app_db import get_db
from app.platform.roles import ANY, Permission

blp = make_blueprint("auth", "Login, tokens, the clinic's settings, users and API keys")


def _redis():
    return current_app.extensions["followup.redis"]


@blp.route("/auth/login")
class Login(MethodView):
    @public("exchanges credentials for tokens")
    @blp.arguments(schemas.LoginIn)
    @blp.response(200, schemas.TokenOut)
    @blp.alt_response(
        401,
        description="Wrong email or password, disabled user, or the account has a second factor and "
        "`code` is missing (`second_factor_required`), wrong or already used",
    )
    @blp.alt_response(
        403,
        description="The clinic requires a second factor of its admins and this one has none: enrol "
        "one (`second_factor_enrollment_required`)",
    )
    @blp.alt_response(409, description="The email and password open accounts in several clinics: send clinic")
    @blp.alt_response(429, description="Too many failed logins for this email from this address, or from it")
    @inject
    def post(self, body, *, uow, now, settings):
        """Log in: access and refresh tokens. An account with a second factor sends its `code` too."""
        return logins.login(
            session=uow,
            redis=_redis(),
            settings=settings,
            credentials=_credentials(body),
            client_address=request.remote_addr,
            now=now,
        )


def _credentials(body: dict) -> logins.Credentials:
    return logins.Credentials(body["email"], body["password"], body.get("clinic"), body.get("code"))


@blp.route("/auth/second-factor")
class SecondFactorEnrolment(MethodView):
    @public("asked with the email and password, so an admin who must enrol before logging in can")
    @blp.arguments(schemas.CredentialsIn)
    @blp.response(201, schemas.SecondFactorEnrolmentOut)
    @blp.alt_response(401, description="Wrong email or password, or disabled user")
    @blp.alt_response(409, description="A second factor is enrolled already (disable it first)")
    @blp.alt_response(429, description="Too many failed logins for this email from this address, or from it")
    @inject
    def post(self, body, *, uow, now, settings):
        """Enrol a second factor (an authenticator app): its secret, the otpauth:// URI and a QR code
        of it to scan. Confirm it with a first code (`/auth/second-factor/confirm`); until then login
        does not ask for it. Starting again replaces an unconfirmed enrolment."""
        return logins.start_second_factor(
            session=uow,
            redis=_redis(),
            settings=settings,
            credentials=_credentials(body),
            client_address=request.remote_addr,
            now=now,
        )


@blp.route("/auth/second-factor/confirm")
class SecondFactorConfirmation(MethodView):
    @public("asked with the email, password and a code of the enrolment being confirmed")
    @blp.arguments(schemas.SecondFactorConfirmIn)
    @blp.response(200, schemas.SecondFactorConfirmedOut)
    @blp.alt_response(400, description="The code is wrong (`code`)")
    @blp.alt_response(401, description="Wrong email or password, or disabled user")
    @blp.alt_response(409, description="No enrolment is waiting")
    @blp.alt_response(429, description="Too many failed logins for this email from this address, or from it")
    @inject
    def post(self, body, *, uow, now, settings):
        """Confirm the enrolment with the code the app shows: ten recovery codes (shown this once)
        and tokens, as a login."""
        return logins.confirm_second_factor(
            session=uow,
            redis=_redis(),
            settings=settings,
            credentials=_credentials(body),
            client_address=request.remote_addr,
            now=now,
        )


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @public("exchanges a refresh token for new tokens")
    @blp.arguments(schemas.RefreshIn)
    @blp.response(200, schemas.TokenOut)
    @blp.alt_response(401, description="Invalid, expired, revoked or already used refresh token")
    @blp.alt_response(
        403,
        description="The clinic requires a second factor of its admins and this one has none: enrol "
        "one (`second_factor_enrollment_required`); the token is not spent",
    )
    @inject
    def post(self, body, *, now):
        """Exchange a refresh token for a new pair; the one given is spent (using it again ends the
        session on every device)."""
        return sessions.refresh(
            db=get_db(),
            settings=get_db().settings,
            refresh_token=body["refresh_token"],
            now=now,
        )


@blp.route("/auth/logout")
class Logout(MethodView):
    @public("the refresh token given is the credential of the session it ends")
    @blp.arguments(schemas.LogoutIn)
    @blp.response(204)
    @blp.alt_response(401, description="Not a refresh token signed by this server")
    @inject
    def post(self, body, *, uow, now, settings):
        """End the session of a refresh token: it and its family can no longer refresh."""
        sessions.logout(
            session=uow,
            settings=settings,
            refresh_token=body["refresh_token"],
            now=now,
        )


@blp.route("/auth/password-setup")
class PasswordSetup(MethodView):
    @public("the one-time setup token is the credential")
    @blp.arguments(schemas.PasswordSetupIn)
    @blp.response(204)
    @blp.alt_response(400, description="Unknown token (`token`)")
    @blp.alt_response(
        410, description="Token already used, replaced or expired, or the user disabled (`token`)"
    )
    @inject
    def post(self, body, *, uow, now):
        """Set one's password with the token of a setup link (a new clinic's admin, an invited user)."""
        onboarding.set_password_with_token(
            session=uow, token=body["token"], password=body["password"], now=now
        )


@blp.route("/auth/password-reset")
class PasswordReset(MethodView):
    @public("anyone may ask; the link goes only to the account's own email")
    @blp.arguments(schemas.PasswordResetIn)
    @blp.response(202)
    @inject
    def post(self, body, *, uow, now, wiring, settings):
        """A forgotten password: every active account with this email is sent a one-time link to set
        a new one (as an invitation's, at most one every 5 minutes). Always 202: the answer does not
        say whether the email has an account."""
        onboarding.request_password_reset(
            session=uow, email=body["email"], settings=settings, now=now, hooks=wiring.auth
        )


@blp.route("/me")
class Me(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.MeOut)
    @inject
    def get(self, *, actor):
        """Who am I: user or API key, role, clinic and permissions."""
        return actor


@blp.route("/me/stream-token")
class MyStreamToken(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.StreamTokenOut)
    @inject
    def post(self, *, uow, actor, now, settings):
        """A short-lived token that opens my live event stream (`GET /api/me/events?token=...`, for a
        browser's EventSource, which cannot send headers); API keys have no stream (403)."""
        return stream_access.issue_stream_token(session=uow, actor=actor, settings=settings, now=now)


@blp.route("/me/second-factor")
class MySecondFactor(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.SecondFactorStatusOut)
    @blp.alt_response(403, description="An API key has no second factor")
    @inject
    def get(self, *, uow, actor):
        """Whether I have a second factor, whether my clinic requires one, and recovery codes left."""
        return second_factor.status(session=uow, actor=actor)


@blp.route("/me/second-factor/disable")
class MySecondFactorRemoval(MethodView):
    @requires(ANY)
    @blp.arguments(schemas.SecondFactorCodeIn)
    @blp.response(204)
    @blp.alt_response(401, description="The code is wrong or already used (`code`)")
    @blp.alt_response(403, description="An API key has no second factor")
    @blp.alt_response(409, description="You have no second factor")
    @blp.alt_response(429, description="Too many failed attempts from this address")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """Remove my second factor, proven by a code (the app's or a recovery code)."""
        second_factor.disable(
            session=uow,
            redis=_redis(),
            settings=settings,
            actor=actor,
            attempt=second_factor.Attempt(body["code"], request.remote_addr),
            now=now,
        )


@blp.route("/me/second-factor/recovery-codes")
class MyRecoveryCodes(MethodView):
    @requires(ANY)
    @blp.arguments(schemas.SecondFactorCodeIn)
    @blp.response(200, schemas.RecoveryCodesOut)
    @blp.alt_response(401, description="The code is wrong or already used (`code`)")
    @blp.alt_response(403, description="An API key has no second factor")
    @blp.alt_response(409, description="You have no second factor")
    @blp.alt_response(429, description="Too many failed attempts from this address")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """Ten new recovery codes, shown this once; the earlier ones stop working."""
        codes = second_factor.regenerate_recovery_codes(
            session=uow,
            redis=_redis(),
            settings=settings,
            actor=actor,
            attempt=second_factor.Attempt(body["code"], request.remote_addr),
            now=now,
        )
        return {"recovery_codes": codes}


@blp.route("/me/password")
class MyPassword(MethodView):
    @requires(ANY)
    @blp.arguments(schemas.PasswordChangeIn)
    @blp.response(200, schemas.TokenOut)
    @blp.alt_response(400, description="The current password is wrong (`current_password`)")
    @blp.alt_response(429, description="Too many wrong current passwords from this address")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """Change your own password: every other session ends; answers a fresh pair of tokens."""
        return onboarding.change_password(
            session=uow,
            redis=_redis(),
            actor=actor,
            change=onboarding.PasswordChange(
                current_password=body["current_password"],
                new_password=body["new_password"],
                client_address=request.remote_addr,
            ),
            settings=settings,
            now=now,
        )


@blp.route("/clinic")
class ClinicSettings(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ClinicOut)
    @inject
    def get(self, *, uow, actor):
        """The caller's clinic and its settings."""
        clinic = service.get_clinic(session=uow, clinic_id=actor.clinic_id)
        return with_etag(clinic, schemas.ClinicOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(clinic_schemas.ClinicUpdateIn)
    @blp.response(200, schemas.ClinicOut)
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @blp.alt_response(409, description="Another clinic sends from this number, Service or domain")
    @inject
    def put(self, body, *, uow, actor, now, settings):
        """Change the clinic's settings (timezone, business hours, holidays, policies). A new SMS
        number or Messaging Service must be one the platform operator assigned to the clinic, never
        the shared SMS_FROM (422 naming the field); a new email_from's domain must be verified for
        the clinic by the platform operator (422); another clinic's is a 409."""
        current = service.get_clinic(session=uow, clinic_id=actor.clinic_id)
        check_if_match(current, schemas.ClinicOut())
        clinic = service.update_clinic(
            session=uow,
            actor=actor,
            changes=body,
            now=now,
            config=settings,
        )
        return with_etag(clinic, schemas.ClinicOut())


@blp.route("/users")
class Users(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.UserQueryArgs, location="query")
    @blp.response(200, schemas.UserOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """The clinic's users."""
        return service.list_users(session=uow, clinic_id=actor.clinic_id, role=args.get("role"))

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.UserCreateIn)
    @blp.response(201, schemas.UserOut)
    @blp.alt_response(409, description="Email already taken")
    @inject
    def post(self, body, *, uow, actor, now, wiring, settings):
        """Create a user of the clinic; without a password they get a setup link by email."""
        return onboarding.add_user(
            session=uow,
            actor=actor,
            data=body,
            settings=settings,
            now=now,
            hooks=wiring.auth,
        )


@blp.route("/users/<int:user_id>")
class UserById(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.UserOut)
    @inject
    def get(self, user_id, *, uow, actor):
        """One user of the clinic."""
        user = service.get_user(session=uow, clinic_id=actor.clinic_id, user_id=user_id)
        return with_etag(user, schemas.UserOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.UserUpdateIn)
    @blp.response(200, schemas.UserOut)
    @blp.alt_response(409, description="Another user has this email")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, user_id, *, uow, actor, now, wiring):
        """Change a user (role, active, out of office, ...); out of office hands their leads over."""
        current = service.get_user(session=uow, clinic_id=actor.clinic_id, user_id=user_id)
        check_if_match(current, schemas.UserOut())
        user = service.update_user(
            session=uow, actor=actor, user_id=user_id, data=body, now=now, hooks=wiring.auth
        )
        return with_etag(user, schemas.UserOut())


@blp.route("/users/<int:user_id>/invitation")
class UserInvitation(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @blp.alt_response(409, description="The user has set a password already, or is disabled")
    @inject
    def post(self, user_id, *, uow, actor, now, wiring, settings):
        """Email the user a fresh password-setup link (the earlier one stops working)."""
        onboarding.reinvite_user(
            session=uow,
            actor=actor,
            user_id=user_id,
            settings=settings,
            now=now,
            hooks=wiring.auth,
        )


@blp.route("/users/<int:user_id>/second-factor")
class UserSecondFactor(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @blp.alt_response(404, description="No such user, or the user has no second factor")
    @inject
    def delete(self, user_id, *, uow, actor, now):
        """Reset a user's second factor (a lost phone and no recovery code left), audited: they log
        in with the password alone, and enrol again where the clinic requires it."""
        service.reset_second_factor(session=uow, actor=actor, user_id=user_id, now=now)


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.ApiKeyOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's API keys (never the keys themselves)."""
        return api_keys.list_api_keys(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ApiKeyIn)
    @blp.response(201, schemas.ApiKeyCreatedOut)
    @inject
    def post(self, body, *, uow, actor, now):
        """Create an API key with an explicit permission list; the key is shown once."""
        key, raw = api_keys.create_api_key(
            session=uow,
            actor=actor,
            name=body["name"],
            permissions=body["permissions"],
            rate_limit_per_minute=body.get("rate_limit_per_minute"),
            now=now,
        )
        key.key = raw  # shown once: set on the object for this response only, never stored
        return key


@blp.route("/api-keys/<int:key_id>")
class ApiKeyById(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ApiKeyUpdateIn)
    @blp.response(200, schemas.ApiKeyOut)
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, key_id, *, uow, actor, now):
        """Rename an API key or set its rate limit (requests per minute)."""
        current = api_keys.get_api_key(session=uow, clinic_id=actor.clinic_id, key_id=key_id)
        check_if_match(current, schemas.ApiKeyOut())
        key = api_keys.update_api_key(session=uow, actor=actor, key_id=key_id, changes=body, now=now)
        return with_etag(key, schemas.ApiKeyOut())

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, key_id, *, uow, actor, now):
        """Revoke an API key."""
        api_keys.revoke_api_key(session=uow, actor=actor, key_id=key_id, now=now)


# The platform operator's API: clinics are created here (or with `followup clinics create`), outside
# every clinic's roles (Authorization: Bearer $FOLLOWUP_PLATFORM_TOKEN).
platform_blp = make_blueprint("platform", "The platform operator: new clinics and their first admin")


@platform_blp.route("/platform/clinics")
class PlatformClinics(MethodView):
    @platform_only
    @platform_blp.arguments(schemas.PlatformClinicIn)
    @platform_blp.response(201, schemas.PlatformClinicOut)
    @platform_blp.alt_response(409, description="The admin's email is taken (`admin_email`)")
    @inject
    def post(self, body, *, uow, now, wiring, settings):
        """Create a clinic and its first clinic_admin; answers the admin's one-time setup link."""
        return onboarding.onboard_clinic(
            session=uow,
            new=onboarding.NewClinic(
                name=body["name"],
                timezone=body["timezone"],
                admin_email=body["admin_email"],
                admin_name=body.get("admin_name"),
            ),
            settings=settings,
            now=now,
            hooks=wiring.auth,
        )


@platform_blp.route("/platform/clinics/<int:clinic_id>/sender-domains")
class PlatformSenderDomains(MethodView):
    @platform_only
    @platform_blp.response(200, schemas.SenderDomainOut(many=True))
    @platform_blp.alt_response(404, description="No such clinic")
    @inject
    def get(self, clinic_id, *, uow):
        """The email domains verified for the clinic: its email_from may use only these."""
        service.get_clinic(session=uow, clinic_id=clinic_id)
        return sender_identity.verified_domains(session=uow, clinic_id=clinic_id)

    @platform_only
    @platform_blp.arguments(schemas.SenderDomainIn)
    @platform_blp.response(201, schemas.SenderDomainOut)
    @platform_blp.alt_response(404, description="No such clinic")
    @platform_blp.alt_response(409, description="The domain is verified for another clinic (`domain`)")
    @inject
    def post(self, body, clinic_id, *, uow, now, settings):
        """Record that the platform operator verified this email domain for the clinic (its SPF
        and DKIM records are set for the platform's mail); the clinic may then send from it."""
        return sender_identity.verify_domain(
            session=uow, clinic_id=clinic_id, domain=body["domain"], config=settings, now=now
        )


@platform_blp.route("/platform/clinics/<int:clinic_id>/sms-senders")
class PlatformSmsSenders(MethodView):
    @platform_only
    @platform_blp.response(200, schemas.SmsSenderOut(many=True))
    @platform_blp.alt_response(404, description="No such clinic")
    @inject
    def get(self, clinic_id, *, uow):
        """The SMS numbers and Messaging Services assigned to the clinic: its sms_number and
        sms_messaging_service_sid may name only these, and texts to them are routed to it."""
        return sender_identity.assigned_sms_senders(session=uow, clinic_id=clinic_id)

    @platform_only
    @platform_blp.arguments(schemas.SmsSenderIn)
    @platform_blp.response(201, schemas.SmsSenderOut)
    @platform_blp.alt_response(404, description="No such clinic")
    @platform_blp.alt_response(409, description="Assigned to another clinic (`sender`)")
    @platform_blp.alt_response(503, description="Twilio could not be asked; nothing changed")
    @inject
    def post(self, body, clinic_id, *, uow, now, settings):
        """Assign a number or Messaging Service of the engine's Twilio account to the clinic (asked of
        Twilio: 422 naming `sender` if not in the account, or if it is the shared SMS_FROM)."""
        return sender_identity.assign_sms_sender(
            session=uow, clinic_id=clinic_id, sender=body["sender"], config=settings, now=now
        )


@platform_blp.route("/platform/clinics/<int:clinic_id>/sms-senders/<string:sender>")
class PlatformSmsSender(MethodView):
    @platform_only
    @platform_blp.response(204)
    @platform_blp.alt_response(404, description="Not assigned to the clinic")
    @inject
    def delete(self, clinic_id, sender, *, uow, now):
        """Take the sender back: if the clinic's settings name it they stop (it sends from the
        shared SMS_FROM again), and texts to it are no longer routed to the clinic."""
        sender_identity.release_sms_sender(session=uow, clinic_id=clinic_id, sender=sender, now=now)
