"""The access declarations of app/platform/access.py check access themselves: the view they wrap is
refused without any before_request hook, before its body is parsed, and a declaration that is not a
view's outermost decorator (so would run after the parsing) stops the app at start."""

import pytest
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields
from werkzeug.exceptions import Forbidden as HTTPForbidden

from app.platform import access
from app.platform.errors import Forbidden, Unauthorized
from app.platform.roles import Permission


class _Body(Schema):
    name = fields.String(required=True)


def _bare_app(check, *, declaration_outermost: bool) -> Flask:
    """A Flask app with no hook at all: one view posting `_Body`, declared above or below the parser."""
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("things", __name__, url_prefix="/things")

    if declaration_outermost:

        class Things(MethodView):
            @access.requires(Permission.CONFIGURE)
            @blp.arguments(_Body)
            def post(self, body):
                return {"name": body["name"]}

    else:

        class Things(MethodView):
            @blp.arguments(_Body)
            @access.requires(Permission.CONFIGURE)
            def post(self, body):
                return {"name": body["name"]}

    blp.route("")(Things)
    api.register_blueprint(blp)
    access.install_check(app, check)
    return app


def test_the_declaration_refuses_before_the_body_is_parsed_with_no_hook():
    asked = []

    def refuse(declared):
        asked.append(declared)
        raise HTTPForbidden()

    app = _bare_app(refuse, declaration_outermost=True)
    assert not app.before_request_funcs  # nothing but the decorator can refuse
    resp = app.test_client().post("/things", json={"not": "the schema"})
    assert resp.status_code == 403  # not 422: the body was never parsed
    assert asked == [access.Declared(permission="lead:configure")]


def test_the_declaration_lets_the_view_run_once_the_check_passes():
    app = _bare_app(lambda declared: None, declaration_outermost=True)
    resp = app.test_client().post("/things", json={"name": "x"})
    assert resp.status_code == 200 and resp.get_json() == {"name": "x"}
    access.refuse_undeclared(app)  # well ordered: starts


def test_a_declaration_below_the_parser_stops_the_app_at_start():
    app = _bare_app(lambda declared: None, declaration_outermost=False)
    assert access.declared_access(app.view_functions["things.Things"], "POST") == (None, None)
    with pytest.raises(RuntimeError, match=r"POST things\.Things"):
        access.refuse_undeclared(app)


def test_a_view_that_declares_nothing_stops_the_app_at_start():
    app = Flask(__name__)
    app.add_url_rule("/open", "open", lambda: "anyone")
    with pytest.raises(RuntimeError, match="GET open"):
        access.refuse_undeclared(app)


def test_an_api_view_called_without_its_hooks_checks_credentials_itself(app, tenant):
    endpoint, _ = app.url_map.bind("localhost").match("/api/lead-sources", method="POST")
    view = app.view_functions[endpoint]
    with app.test_request_context("/api/lead-sources", method="POST", json={}), pytest.raises(Unauthorized):
        view()  # no before_request ran: the decorator authenticated, and found nobody
    headers = tenant.headers("front_desk")  # lacks lead:configure
    request = app.test_request_context("/api/lead-sources", method="POST", json={}, headers=headers)
    with request, pytest.raises(Forbidden, match="lead:configure"):
        view()
