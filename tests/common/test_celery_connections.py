"""Celery tasks reuse the database connection as web requests do (Django's CONN_MAX_AGE rule),
instead of Celery's default of closing it before and after every task."""

from __future__ import annotations

import pytest
from celery import current_app
from celery.signals import task_postrun, task_prerun
from django.db import connection

from bazaar_common.celery import _ConnectionKeepingWorkerFixup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_fixup():
    fixup = _ConnectionKeepingWorkerFixup(current_app)
    task_prerun.connect(fixup.on_task_prerun)
    task_postrun.connect(fixup.on_task_postrun)
    yield fixup
    task_prerun.disconnect(fixup.on_task_prerun)
    task_postrun.disconnect(fixup.on_task_postrun)


@pytest.mark.postgres
def test_a_task_ends_with_its_connection_kept_for_the_next(worker_fixup):
    # Given a connection that may live (CONN_MAX_AGE > 0) and is open
    assert connection.settings_dict["CONN_MAX_AGE"] > 0
    assert connection.vendor == "postgresql"
    connection.ensure_connection()
    opened = connection.connection

    # When a task's prerun and postrun run (what Celery sends around every task outside eager mode)
    worker_fixup.close_database()
    worker_fixup.close_database()

    # Then the same connection serves the next task
    assert connection.connection is opened


@pytest.mark.postgres
def test_a_broken_connection_is_closed_at_the_end_of_a_task(worker_fixup):
    assert connection.vendor == "postgresql"
    connection.ensure_connection()
    connection.errors_occurred = True
    connection.needs_rollback = False
    # A connection that errored and fails its health check is dropped, as after a web request
    connection.connection.close()

    worker_fixup.close_database()

    assert connection.connection is None


def test_every_service_app_installs_the_connection_keeping_fixup():
    from bazaar_common.celery import make_celery_app

    app = make_celery_app("tests", package="catalog_service")
    assert app.fixups == ["bazaar_common.celery:django_fixup"]


class _Task:
    """What the fixup reads from the ``sender`` of task_postrun."""

    class request:
        is_eager = False


@pytest.mark.parametrize("state", ["FAILURE", "RETRY"])
def test_a_task_that_did_not_succeed_leaves_no_connection_to_the_next(worker_fixup, state):
    # Given an open connection that reports itself usable (SQLite's always does, even after a soft
    # time limit interrupted it mid-statement)
    connection.ensure_connection()
    assert connection.is_usable()

    # When a task ends without success
    worker_fixup.on_task_postrun(_Task, state=state)

    # Then the next task opens a fresh connection instead of inheriting one in an unknown state
    assert connection.connection is None


@pytest.mark.postgres
def test_a_task_that_succeeded_keeps_a_usable_connection(worker_fixup):
    assert connection.settings_dict["CONN_MAX_AGE"] > 0
    connection.ensure_connection()
    opened = connection.connection

    worker_fixup.on_task_postrun(_Task, state="SUCCESS")

    assert connection.connection is opened
