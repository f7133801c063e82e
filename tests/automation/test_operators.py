"""The rule language's operators, as properties (hypothesis) and as the examples a clinic would write."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.domains.automation import rules
from app.domains.automation.language import validation as rule_validation
from app.domains.business_hours.rules import BusinessCalendar

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))


def holds(operator, actual, expected, changed=()):
    context = rules.Context({"lead.status": actual}, changed=changed)
    return rules.check({"field": "lead.status", "operator": operator, "value": expected}, context)[0]


@given(values, values)
def test_not_equals_is_the_negation_of_equals(actual, expected):
    assert holds("not_equals", actual, expected) is (not holds("equals", actual, expected))


@given(values, st.lists(scalars, max_size=5))
def test_not_in_is_the_negation_of_in(actual, options):
    assert holds("not_in", actual, options) is (not holds("in", actual, options))


@given(values, values)
def test_greater_and_less_are_never_both_true(actual, expected):
    assert not (holds("greater_than", actual, expected) and holds("less_than", actual, expected))


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_numbers_compare_as_numbers_whatever_their_type(a, b):
    assert holds("greater_than", a, float(b)) is (a > b)
    assert holds("less_than", str(a), b) is (a < b)
    assert holds("equals", float(a), b) is (a == b)


@given(values)
def test_a_value_equals_itself_and_is_in_a_list_holding_it(value):
    assert holds("equals", value, value)
    if not isinstance(value, list):
        assert holds("in", value, [value])


@given(values)
def test_exists_means_present(value):
    present = value not in (None, "", [])
    assert holds("exists", value, True) is present
    assert holds("exists", value, False) is (not present)


@given(st.text(max_size=10), st.text(max_size=10), st.text(max_size=10))
def test_contains_finds_any_substring_ignoring_case(before, middle, after):
    assert holds("contains", before + middle + after, middle.upper())


@given(values, values)
def test_changed_to_holds_only_on_a_field_the_event_changed(actual, expected):
    assert not holds("changed_to", actual, expected, changed=())
    assert holds("changed_to", actual, expected, changed={"lead.status"}) is holds("equals", actual, expected)


@given(values, values)
def test_missing_values_never_compare(actual, expected):
    if actual is None:
        assert not holds("greater_than", actual, expected) and not holds("less_than", actual, expected)


def test_examples_a_clinic_writes():
    assert holds("equals", "NEW", "new")  # enum values match whatever their case
    assert holds("contains", ["INVISALIGN", "BRACES"], "braces")  # a list field contains a member
    assert holds("in", ["INVISALIGN"], ["INVISALIGN", "BRACES"])  # any member of a list field
    assert not holds("in", None, ["a"]) and holds("not_in", None, ["a"])
    assert not holds("equals", True, 1)  # a flag is not a number


def test_evaluation_stops_at_the_first_failure_unless_exhaustive():
    asked = []

    def expensive():
        asked.append(1)
        return 3

    context = rules.Context({"event.outcome": "spoke"}, {"failed_attempts_in_a_row": expensive})
    conditions = [
        {"field": "event.outcome", "operator": "in", "value": list(rules.FAILED_OUTCOMES)},
        {"field": "failed_attempts_in_a_row", "operator": "equals", "value": 3},
    ]
    quick = rules.evaluate(conditions, context)
    assert quick.matched is False and len(quick.conditions) == 1 and asked == []
    full = rules.evaluate(conditions, context, exhaustive=True)
    assert [c["result"] for c in full.conditions] == [False, True] and asked == [1]


def test_validation_names_what_is_wrong():
    errors = rule_validation.validate_conditions(
        [
            {"field": "lead.status", "operator": "in", "value": "NEW"},
            {"field": "x", "operator": "equals", "value": 1},
        ]
    )
    assert (
        errors["0"]["value"] == ["in takes a list of values"]
        and "unknown field 'x'" in errors["1"]["field"][0]
    )
    assert rule_validation.validate_actions([]) == {"_schema": ["must be a non-empty list of actions"]}
    assert "title" in rule_validation.validate_actions([{"type": "create_task"}])["0"]
    assert "subject" in rule_validation.validate_actions([{"type": "send_email", "body": "hi"}])["0"]
    assert rule_validation.validate_actions([{"type": "send_sms", "body": "Hi {{ first_name }}"}]) == {}


def test_delays_in_plain_and_business_time():
    calendar = BusinessCalendar.from_settings(
        "America/New_York", {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, None
    )
    friday_16h = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)  # 16:00 in New York
    assert rules.after_delay(friday_16h, {"amount": 3, "unit": "days"}, calendar) == datetime(
        2026, 11, 23, 21, 0, tzinfo=UTC
    )
    assert rules.after_delay(friday_16h, {"amount": 2, "unit": "business_hours"}, calendar) == datetime(
        2026, 11, 23, 15, 0, tzinfo=UTC
    )  # one hour on Friday, one on Monday from 09:00
    assert rules.after_delay(friday_16h, {"amount": 1, "unit": "business_days"}, calendar) == datetime(
        2026, 11, 23, 21, 0, tzinfo=UTC
    )
    closed = BusinessCalendar.from_settings("UTC", {}, None)
    assert rules.after_delay(friday_16h, {"amount": 5, "unit": "business_minutes"}, closed) == datetime(
        2026, 11, 20, 21, 5, tzinfo=UTC
    )


def test_groups_any_all_not_nest_and_a_flat_list_is_all():
    leaf = lambda value: {"field": "lead.status", "operator": "equals", "value": value}  # noqa: E731
    context = rules.Context({"lead.status": "NEW"})
    cases = [
        ([leaf("NEW"), leaf("LOST")], False),  # a flat list: all
        ([{"any": [leaf("LOST"), leaf("NEW")]}], True),
        ([{"not": leaf("NEW")}], False),
        ([{"not": {"any": [leaf("LOST"), {"all": [leaf("NEW"), leaf("new")]}]}}], False),
        ([{"all": [{"not": leaf("LOST")}, {"any": [leaf("WON"), leaf("NEW")]}]}], True),
    ]
    for conditions, expected in cases:
        assert rule_validation.validate_conditions(conditions) == {}
        assert rules.matches(rules.compile_conditions(conditions), context) is expected
        assert rules.evaluate(conditions, context).matched is expected
        assert rules.evaluate(conditions, context, exhaustive=True).matched is expected


def test_a_rule_has_at_most_fifty_conditions_in_all_its_groups():
    leaf = {"field": "lead.status", "operator": "equals", "value": "NEW"}
    assert rule_validation.validate_conditions([{"any": [leaf] * 50}]) == {}
    assert "_schema" in rule_validation.validate_conditions([leaf, {"any": [leaf] * 50}])
