"""The one backoff formula and give-up rule of outbound delivery (notifications and webhooks)."""

from app.platform.delivery import rules

NOTIFICATIONS = rules.RetryPolicy(max_attempts=4, base_seconds=30, cap_seconds=100)
WEBHOOKS = rules.RetryPolicy(max_attempts=3, base_seconds=30, cap_seconds=100, spread=(1.0, 1.25))


def test_the_backoff_doubles_from_the_base_up_to_the_cap():
    delays = [rules.backoff_seconds(n, base=30, cap=100, jitter=0.5) for n in (1, 2, 3, 4)]
    assert delays == [30, 60, 100, 100]


def test_jitter_spreads_the_delay_over_the_policy_range():
    # Notifications: half to one and a half times the backoff; webhooks: never sooner than it.
    assert rules.backoff_seconds(2, base=30, cap=100, jitter=0.0) == 30
    assert rules.backoff_seconds(2, base=30, cap=100, jitter=1.0) == 90
    assert rules.backoff_seconds(2, base=30, cap=100, jitter=0.0, spread=(1.0, 1.25)) == 60
    assert rules.backoff_seconds(2, base=30, cap=100, jitter=1.0, spread=(1.0, 1.25)) == 75


def test_a_permanent_error_is_never_retried():
    assert rules.after_failure(NOTIFICATIONS, 1, permanent=True, jitter=0.5) == rules.Step(rules.FAILED)


def test_a_transient_error_is_retried_until_the_attempts_run_out():
    assert rules.after_failure(NOTIFICATIONS, 1, permanent=False, jitter=0.5) == rules.Step(rules.RETRY, 30)
    assert rules.after_failure(WEBHOOKS, 2, permanent=False, jitter=0.0) == rules.Step(rules.RETRY, 60)
    assert rules.after_failure(NOTIFICATIONS, 4, permanent=False, jitter=0.5) == rules.Step(rules.EXHAUSTED)
    assert rules.after_failure(WEBHOOKS, 3, permanent=False, jitter=0.5) == rules.Step(rules.EXHAUSTED)
