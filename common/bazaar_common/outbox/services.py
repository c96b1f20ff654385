"""Writing to the outbox, publishing it, re-driving what was never acknowledged, and consuming
messages exactly once in effect.

Delivery, end to end: the outbox guarantees a message reaches the broker; the consumer's
acknowledgement (:class:`~bazaar_common.contracts.MessageAck`, sent through *its* outbox in the
transaction that handled the message) tells the sender it reached its consumer. A message not
acknowledged by its deadline is sent again with back-off (a broker that lost its queue, a worker
killed with the message, a reply lost on the way); consumers are idempotent by message id, so a
re-send is harmless. After the last attempt the flow's give-up handler settles it safely and flags
it for support.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Counter

from bazaar_common.contracts import AckOutcome, MalformedMessage, Message, MessageAck, message_class_for
from bazaar_common.outbox import metrics
from bazaar_common.outbox.models import DeadLetter, OutboxMessage, ProcessedMessage
from bazaar_common.request_id import current_request_id

logger = logging.getLogger(__name__)
PUBLISHED = Counter("bazaar_outbox_published_total", "Outbox messages published to the broker.", ["task"])
PUBLISH_FAILURES = Counter(
    "bazaar_outbox_publish_failures_total", "Attempts to publish an outbox message that failed.", ["task"]
)
DUPLICATES_SKIPPED = Counter(
    "bazaar_consumer_duplicates_skipped_total", "Redelivered messages a consumer had handled already.", ["task"]
)


def message_headers() -> dict[str, str | None]:
    """What a message carries of the moment that caused it: the request id and the W3C trace
    context (``traceparent``/``tracestate``), so the consumer's logs and spans join the same
    request and trace."""
    headers: dict[str, str | None] = {"request_id": current_request_id.get()}
    propagate.inject(headers)
    return headers


GiveUpHandler = Callable[[Message, OutboxMessage], str]
_give_up_handlers: dict[str, GiveUpHandler] = {}


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def own_queue() -> str:
    """This service's queue: where consumers send their acknowledgements of our messages."""
    return str(getattr(settings, "BAZAAR_SERVICE", "") or "")


def outbox_enqueue(message: Message) -> list[OutboxMessage]:
    """Write ``message`` (one row per route) in the caller's transaction; publish once that commits.

    Call it inside the ``transaction.atomic`` block that makes the change the message announces:
    if that transaction rolls back, no message exists and nothing is sent.
    """
    if not isinstance(message, Message):
        raise TypeError(f"outbox_enqueue takes a contracts.Message, not {type(message).__name__}")
    body = message.to_payload()
    headers = {**message_headers(), "reply_queue": own_queue()}
    rows = [
        OutboxMessage.objects.create(task_name=route.task, queue=route.queue, payload=body, headers=headers)
        for route in message.ROUTES
    ]
    ids = [row.id for row in rows]
    # Published right after commit by this process's publisher thread, so the request never
    # waits for the broker (a broker outage used to hold every checkout ~6 s); the relay catches
    # whatever that misses.
    transaction.on_commit(lambda: publisher.submit(ids))
    return rows


def _enqueue_ack(*, message_id: str, task_name: str, reply_queue: str, outcome: AckOutcome) -> None:
    if not reply_queue:
        return  # a sender from before acknowledgements existed: it does not wait for one
    ack = MessageAck(message_id=message_id, task=task_name, outcome=outcome)
    row = OutboxMessage.objects.create(
        task_name=MessageAck.TASK,
        queue=reply_queue,
        payload=ack.to_payload(),
        # Like every message, the acknowledgement carries the trace it belongs to: without it, each
        # ack was a trace of its own (with the request's id).
        headers=message_headers(),
    )
    transaction.on_commit(lambda: publisher.submit([row.id]))


class BackgroundPublisher:
    """A daemon thread that publishes the messages of committed transactions soon after commit.

    Whatever has been submitted by the time it looks (many transactions' messages, under load)
    goes out in one round: one transaction that locks the rows, sends them and marks them
    published. It keeps its database connection while messages keep coming and gives it back
    after ``idle_seconds`` without any (``OUTBOX_PUBLISHER_IDLE_SECONDS``), so a busy process
    does not open a connection per message and an idle one holds none.

    After a failed publish it stops trying for ``pause_seconds`` and leaves the backlog to the
    relay, so an outage costs one connect timeout, not one per message.
    """

    def __init__(self, pause_seconds: float = 5.0, max_batch: int = 200) -> None:
        self.pause_seconds = pause_seconds
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Any, list[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._paused_until = 0.0

    def submit(self, ids: list[Any]) -> None:
        from celery import current_app

        self._idle.clear()
        # With the Celery app current where the transaction committed (a thread has its own).
        app: Any = current_app  # a proxy; the app object itself goes to the thread
        self._queue.put((app._get_current_object(), ids))
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
                    self._thread.start()

    def resume(self) -> None:
        self._paused_until = 0.0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted was tried (tests, and a clean shutdown)."""
        return self._idle.wait(timeout)

    def _take(self, first: tuple[Any, list[Any]]) -> dict[Any, list[Any]]:
        """``first`` and whatever else is waiting (up to ``max_batch`` ids), by Celery app."""
        batches: dict[Any, list[Any]] = {first[0]: list(first[1])}
        taken = len(first[1])
        while taken < self.max_batch:
            try:
                app, ids = self._queue.get_nowait()
            except queue.Empty:
                break
            batches.setdefault(app, []).extend(ids)
            taken += len(ids)
        return batches

    def _run(self) -> None:
        from django.db import close_old_connections

        holding_connection = False
        while True:
            try:
                item = self._queue.get(
                    timeout=_setting("OUTBOX_PUBLISHER_IDLE_SECONDS", 2.0) if holding_connection else None
                )
            except queue.Empty:
                # Nothing for a while: give the connection back (a test database, a pooler).
                connection.close()
                holding_connection = False
                continue
            try:
                for app, ids in self._take(item).items():
                    app.set_current()
                    if time.monotonic() < self._paused_until:
                        continue
                    close_old_connections()
                    holding_connection = True
                    if outbox_publish(ids=ids, limit=len(ids)) < len(ids) and _unpublished_count(ids):
                        self._paused_until = time.monotonic() + self.pause_seconds
            except Exception as exc:  # never let the thread die; the relay has the backlog
                logger.warning("outbox publisher round failed", extra={"error": str(exc)})
            finally:
                if self._queue.empty():
                    self._idle.set()


def _unpublished_count(ids: list[Any]) -> int:
    return OutboxMessage.objects.filter(id__in=ids, published_at__isnull=True).count()


publisher = BackgroundPublisher()


def _send(message: OutboxMessage) -> None:
    from celery import current_app

    kwargs: dict[str, Any] = {"message_id": str(message.id), "payload": message.payload}
    if message.headers.get("reply_queue") and message.task_name != MessageAck.TASK:
        kwargs["reply_queue"] = message.headers["reply_queue"]
    stored = message.headers or {}
    trace_headers = {key: stored[key] for key in ("traceparent", "tracestate") if stored.get(key)}
    # Published from the relay thread, maybe long after the request: publish inside the stored
    # trace context, so the publish span (and the traceparent it passes on) belongs to that trace.
    token = otel_context.attach(propagate.extract(trace_headers))
    try:
        current_app.send_task(
            message.task_name,
            kwargs=kwargs,
            queue=message.queue,
            task_id=str(message.id),
            headers={"request_id": stored.get("request_id"), **trace_headers},
        )
    finally:
        otel_context.detach(token)


def _awaits_ack(message: OutboxMessage) -> bool:
    return message.task_name != MessageAck.TASK and bool(message.headers.get("reply_queue"))


def _ack_deadline(attempts: int) -> timedelta:
    """How long to wait for the acknowledgement after the ``attempts``-th send (doubling, capped)."""
    first = _setting("OUTBOX_ACK_TIMEOUT_SECONDS", 30.0)
    cap = _setting("OUTBOX_ACK_BACKOFF_MAX_SECONDS", 600.0)
    return timedelta(seconds=min(cap, first * 2 ** max(0, attempts - 1)))


def _mark_published(message: OutboxMessage, sent: list[OutboxMessage]) -> None:
    now = timezone.now()
    message.published_at = now
    message.attempts += 1
    if _awaits_ack(message):
        message.ack_due_at = now + _ack_deadline(message.attempts)
    sent.append(message)
    PUBLISHED.labels(message.task_name).inc()


def _send_acks(rows: list[OutboxMessage]) -> None:
    """Acknowledgements bound for one queue, as one broker message (``outbox.ack`` with a
    ``batch``): under load a consumer answers many messages of one sender between two rounds of
    its publisher, and one task on the other side settles them all. Each stays its own outbox row,
    so what is published and what is not is still known row by row.

    The first acknowledgement travels as the plain ``message_id``/``payload`` of a single one and
    the rest as ``batch``: a worker of the previous release, which knows no ``batch``, still takes
    the first, and the senders of the others send again (their consumers answer again), so even a
    rolling deploy loses no acknowledgement for good."""
    from celery import current_app

    if len(rows) == 1:
        _send(rows[0])
        return
    first, *rest = rows
    stored = first.headers or {}
    trace_headers = {key: stored[key] for key in ("traceparent", "tracestate") if stored.get(key)}
    # One message, one trace: the first acknowledgement's (as a single one would be sent).
    token = otel_context.attach(propagate.extract(trace_headers))
    try:
        current_app.send_task(
            MessageAck.TASK,
            kwargs={
                "message_id": str(first.id),
                "payload": first.payload,
                "batch": [{"message_id": str(row.id), "payload": row.payload} for row in rest],
            },
            queue=first.queue,
            task_id=str(uuid.uuid4()),
            headers={"request_id": stored.get("request_id"), **trace_headers},
        )
    finally:
        otel_context.detach(token)


def _publish_locked(queryset: Any) -> int:
    sent: list[OutboxMessage] = []
    acks: dict[str, list[OutboxMessage]] = {}
    for message in queryset:
        if message.task_name == MessageAck.TASK:
            acks.setdefault(message.queue, []).append(message)
            continue
        try:
            _send(message)
        except Exception as exc:  # broker down: keep it for the relay's next round
            _publish_failed(message, exc)
            break  # keep the order: later messages wait for this one
        _mark_published(message, sent)
    for rows in acks.values():  # acknowledgements need no order among themselves
        try:
            _send_acks(rows)
        except Exception as exc:
            for row in rows:
                _publish_failed(row, exc)
            break
        for row in rows:
            _mark_published(row, sent)
    if sent:
        # One UPDATE for the round (in the transaction holding the rows' locks, as before).
        OutboxMessage.objects.bulk_update(sent, ["published_at", "attempts", "ack_due_at"])
        publisher.resume()  # the broker answers again
    return len(sent)


def _publish_failed(message: OutboxMessage, exc: Exception) -> None:
    message.attempts += 1
    message.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
    message.save(update_fields=["attempts", "last_error"])
    logger.warning("outbox publish failed", extra={"message_id": str(message.id), "error": str(exc)})
    PUBLISH_FAILURES.labels(message.task_name).inc()


def _lockable(queryset: Any) -> Any:
    if connection.vendor == "postgresql":
        # Several relays (one per worker) never handle the same row concurrently.
        return queryset.select_for_update(skip_locked=True)
    return queryset


def _unpublished(ids: list[Any] | None, limit: int, older_than: timedelta | None = None) -> Any:
    queryset = OutboxMessage.objects.filter(published_at__isnull=True).order_by("created_at", "id")
    if ids is not None:
        queryset = queryset.filter(id__in=ids)
    if older_than is not None:
        queryset = queryset.filter(created_at__lte=timezone.now() - older_than)
    return _lockable(queryset)[:limit]


def outbox_publish(*, ids: list[Any] | None = None, limit: int = 100, older_than: timedelta | None = None) -> int:
    """Publish unpublished messages (``ids`` only, or the oldest ``limit``); return how many.

    ``older_than``: only messages written at least that long ago (the relay's round, which leaves
    fresh messages to the publisher thread of the process that wrote them).
    """
    try:
        with transaction.atomic():
            return _publish_locked(list(_unpublished(ids, limit, older_than)))
    except Exception as exc:  # the database itself is away: the relay will try again
        logger.warning("outbox relay round failed", extra={"error": str(exc)})
        return 0


# --- Re-driving unacknowledged messages --------------------------------------------------------------


def on_undelivered(*task_names: str) -> Callable[[GiveUpHandler], GiveUpHandler]:
    """Register ``handler(message, row) -> outcome`` for messages of ``task_names`` that were
    never acknowledged after the last attempt. It runs in the transaction that marks the row given
    up; it settles the flow safely (reject, release, flag for support) and returns the outcome
    counted in ``bazaar_saga_settled_total``."""

    def register(handler: GiveUpHandler) -> GiveUpHandler:
        for name in task_names:
            _give_up_handlers[name] = handler
        return handler

    return register


def _step(task_name: str) -> str:
    cls = message_class_for(task_name)
    return cls.STEP if cls is not None and cls.STEP else task_name


def _give_up(row: OutboxMessage) -> None:
    row.gave_up_at = timezone.now()
    row.ack_due_at = None
    row.save(update_fields=["gave_up_at", "ack_due_at"])
    step = _step(row.task_name)
    handler = _give_up_handlers.get(row.task_name)
    outcome = "flagged"
    cls = message_class_for(row.task_name)
    if handler is not None and cls is not None:
        try:
            message = cls.parse(row.payload)
        except MalformedMessage:
            message = None  # written before its contract changed: only support can settle it
        if message is not None:
            outcome = handler(message, row)
    metrics.SAGA_SETTLED.labels(step=step, outcome=outcome).inc()
    logger.error(
        "message never acknowledged; settled",
        extra={"message_id": str(row.id), "task": row.task_name, "attempts": row.attempts, "outcome": outcome},
    )


def outbox_redrive(*, limit: int = 100) -> int:
    """Send again every message whose acknowledgement is overdue, or give it up after the last
    attempt; returns how many rows were handled. Each in its own transaction."""
    max_attempts = int(_setting("OUTBOX_MAX_ATTEMPTS", 8))
    handled = 0
    while handled < limit:
        try:
            with transaction.atomic():
                queryset = OutboxMessage.objects.filter(ack_due_at__lte=timezone.now()).order_by("ack_due_at")
                row = _lockable(queryset).first()
                if row is None:
                    break
                if row.attempts >= max_attempts:
                    _give_up(row)
                else:
                    _send(row)
                    row.attempts += 1
                    row.ack_due_at = timezone.now() + _ack_deadline(row.attempts)
                    row.save(update_fields=["attempts", "ack_due_at"])
                    metrics.SAGA_REDRIVES.labels(step=_step(row.task_name)).inc()
                    logger.info(
                        "message re-sent: no acknowledgement yet",
                        extra={"message_id": str(row.id), "task": row.task_name, "attempt": row.attempts},
                    )
        except Exception as exc:  # broker or database away: next round
            logger.warning("outbox redrive round failed", extra={"error": str(exc)})
            break
        handled += 1
    _refresh_overdue_gauge()
    return handled


def _refresh_overdue_gauge() -> None:
    """Messages sent more than once and still unacknowledged: their flow step is overdue."""
    try:
        rows = (
            OutboxMessage.objects.filter(ack_due_at__isnull=False, attempts__gt=1)
            .values("task_name")
            .annotate(n=Count("id"))
        )
        per_step: dict[str, int] = {}
        for row in rows:
            per_step[_step(row["task_name"])] = per_step.get(_step(row["task_name"]), 0) + row["n"]
    except Exception:  # the database is away; the gauge keeps its last value
        return
    for cls_step in {_step(route.task) for cls in _all_classes() for route in cls.ROUTES}:
        metrics.SAGA_OVERDUE.labels(step=cls_step).set(per_step.get(cls_step, 0))


def _all_classes() -> tuple[type[Message], ...]:
    from bazaar_common.contracts import SAGA_MESSAGES

    return SAGA_MESSAGES


def outbox_acknowledge(ack: MessageAck) -> bool:
    """Our message ``ack.message_id`` reached its consumer: stop re-sending it."""
    return outbox_acknowledge_many([ack]) == 1


def outbox_acknowledge_many(acks: list[MessageAck]) -> int:
    """Our messages reached their consumers: stop re-sending them; returns how many rows changed.

    One transaction for the lot, the rows locked in primary-key order (so two batches never wait
    on each other in a cycle). A consumer that dead-lettered a message will never act on it, and
    re-sending the same bytes cannot help: its flow is settled now, exactly as after its last
    unanswered attempt.
    """
    by_id: dict[uuid.UUID, MessageAck] = {}
    for ack in acks:
        try:
            by_id[uuid.UUID(ack.message_id)] = ack
        except ValueError:
            logger.warning("acknowledgement of a message id we never sent", extra={"message_id": ack.message_id})
    if not by_id:
        return 0
    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update().filter(pk__in=list(by_id), acked_at__isnull=True).order_by("pk")
        )
        now = timezone.now()
        awaited: dict[uuid.UUID, bool] = {}
        for row in rows:
            ack = by_id[row.pk]
            row.acked_at = now
            row.ack_outcome = ack.outcome.value
            awaited[row.pk] = row.ack_due_at is not None
            row.ack_due_at = None
        OutboxMessage.objects.bulk_update(rows, ["acked_at", "ack_outcome", "ack_due_at"])
        for row in rows:
            if by_id[row.pk].outcome == AckOutcome.DEAD_LETTERED and awaited[row.pk] and row.gave_up_at is None:
                _give_up(row)
    return len(rows)


# --- Consuming -----------------------------------------------------------------------------------


def message_consume_once(*, message_id: str, task_name: str, handler: Callable[[], Any], reply_queue: str = "") -> bool:
    """Run ``handler`` unless ``message_id`` was handled before; both in one transaction, with the
    acknowledgement to ``reply_queue`` written in it too.

    Returns False for a redelivery (acknowledged again: the first acknowledgement may be the one
    that was lost). Two concurrent deliveries of one message: the second waits on the first's row
    and then finds it, so the handler's effect happens once.
    """
    try:
        with transaction.atomic():
            ProcessedMessage.objects.create(message_id=message_id, task_name=task_name)
            handler()
            _enqueue_ack(
                message_id=message_id, task_name=task_name, reply_queue=reply_queue, outcome=AckOutcome.HANDLED
            )
    except IntegrityError:
        if ProcessedMessage.objects.filter(message_id=message_id).exists():
            logger.info("duplicate message ignored", extra={"message_id": message_id, "task": task_name})
            DUPLICATES_SKIPPED.labels(task_name).inc()
            with transaction.atomic():
                _enqueue_ack(
                    message_id=message_id, task_name=task_name, reply_queue=reply_queue, outcome=AckOutcome.DUPLICATE
                )
            return False
        raise
    return True


def message_dead_letter(
    *, message_id: str, task_name: str, payload: Any, error: MalformedMessage, reply_queue: str = ""
) -> bool:
    """Put a payload that is not its contract aside for support, once per message id; the sender
    is told (it must not keep re-sending bytes that cannot work). Returns True when recorded now."""
    reason = str(error)[:2000]
    try:
        with transaction.atomic():
            ProcessedMessage.objects.create(message_id=message_id, task_name=task_name)
            DeadLetter.objects.create(
                message_id=message_id, task_name=task_name, payload=_jsonable(payload), reason=reason
            )
            _enqueue_ack(
                message_id=message_id, task_name=task_name, reply_queue=reply_queue, outcome=AckOutcome.DEAD_LETTERED
            )
    except IntegrityError:
        return False  # this message was handled or dead-lettered before
    metrics.DEAD_LETTERS.labels(task=task_name).inc()
    logger.error("message dead-lettered", extra={"message_id": message_id, "task": task_name, "reason": reason})
    return True


def _jsonable(payload: Any) -> Any:
    import json

    try:
        json.dumps(payload)
    except (TypeError, ValueError):
        return repr(payload)
    return payload
