"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from app.services.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 10, clock=clock)

    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # resets the count
    for _ in range(2):
        breaker.record_failure()

    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 10


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(1, 10, clock=clock, on_change=changes.append)
    breaker.record_failure()

    clock.now += 10
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # everybody else waits for the probe

    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_opens_again_and_a_released_one_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5, 10, clock=clock)
    for _ in range(5):
        breaker.record_failure()

    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 10

    clock.now += 10
    assert breaker.allow()
    breaker.release()  # e.g. the probe was cancelled
    assert breaker.allow()
