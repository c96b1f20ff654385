"""Task time limits in a worker whose pool does not enforce them (``threads``, what ``make up``
runs): the soft limit raises ``SoftTimeLimitExceeded`` in the task's own thread, a task still
running at the hard limit ends the process (as prefork ends its child), and prefork workers are
left to prefork.

Real threads, a fake clock: the watchdog's decisions do not depend on how loaded the machine is.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from celery import Celery
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.thread import TaskPool as ThreadPool
from celery.exceptions import SoftTimeLimitExceeded

from bazaar_common.celery import HARD_LIMIT_EXIT_STATUS, TaskDeadlineWatchdog, ThreadPoolDeadlines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run_in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except SoftTimeLimitExceeded as exc:
            outcome["raised"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_the_soft_limit_raises_in_the_tasks_own_thread_once():
    clock, exits = Clock(), []
    watchdog = TaskDeadlineWatchdog(soft_seconds=5, hard_seconds=10, on_hard_limit=exits.append, clock=clock)
    started, release = threading.Event(), threading.Event()

    def task() -> str:
        watchdog.started(task_id="t-1", name="catalog.reserve_stock")
        try:
            started.set()
            while not release.is_set():  # Python code: an async exception reaches it at once
                time.sleep(0.01)
            return "finished"
        finally:
            watchdog.finished()

    thread, outcome = _run_in_thread(task)
    other, other_outcome = _run_in_thread(lambda: (time.sleep(0.3), "untouched")[1])
    assert started.wait(5)

    clock.now += 4.9
    watchdog.check()
    time.sleep(0.1)
    assert thread.is_alive()  # not yet

    clock.now += 0.2
    watchdog.check()
    watchdog.check()
    thread.join(5)

    assert not thread.is_alive()
    assert isinstance(outcome.get("raised"), SoftTimeLimitExceeded)
    other.join(5)
    assert other_outcome == {"result": "untouched"}  # a thread that runs no task is never touched
    assert exits == []


def test_a_task_still_running_at_the_hard_limit_ends_the_process():
    clock, exits = Clock(), []
    watchdog = TaskDeadlineWatchdog(soft_seconds=5, hard_seconds=10, on_hard_limit=exits.append, clock=clock)
    started = threading.Event()

    def stuck() -> None:
        watchdog.started(task_id="t-2", name="orders.stock_reserved")
        started.set()
        time.sleep(1.0)  # inside a C call: the soft limit's exception waits until it returns

    thread, _ = _run_in_thread(stuck)
    assert started.wait(5)
    clock.now += 10.0

    watchdog.check()

    assert exits == [HARD_LIMIT_EXIT_STATUS]
    thread.join(5)


def test_a_finished_task_is_forgotten_and_a_tasks_own_limit_wins():
    clock, exits = Clock(), []
    watchdog = TaskDeadlineWatchdog(soft_seconds=25, hard_seconds=30, on_hard_limit=exits.append, clock=clock)

    def quick() -> None:
        watchdog.started(task_id="t-3", name="quick")
        watchdog.finished()

    thread, _ = _run_in_thread(quick)
    thread.join(5)
    clock.now += 3600
    watchdog.check()
    assert exits == []

    started = threading.Event()

    def own_limit() -> None:
        watchdog.started(task_id="t-4", name="slow", hard_seconds=2)
        started.set()
        time.sleep(0.5)

    thread, _ = _run_in_thread(own_limit)
    assert started.wait(5)
    clock.now += 2
    watchdog.check()
    assert exits == [HARD_LIMIT_EXIT_STATUS]
    thread.join(5)


@pytest.mark.parametrize(("pool", "enabled"), [(ThreadPool, True), (PreforkPool, False)], ids=["threads", "prefork"])
def test_the_step_runs_only_where_the_pool_does_not_enforce_limits(pool, enabled):
    app = Celery("deadlines-test")
    app.conf.task_time_limit = 30
    app.conf.task_soft_time_limit = 25

    step = ThreadPoolDeadlines(SimpleNamespace(app=app, pool_cls=pool))

    assert step.enabled is enabled
    assert (step.watchdog.soft_seconds, step.watchdog.hard_seconds) == (25, 30)


def test_the_step_is_part_of_a_service_worker():
    from catalog_service.config.celery import app

    assert ThreadPoolDeadlines in app.steps["worker"]
