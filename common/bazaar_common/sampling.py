"""Which traces are kept: parent based, a ratio of new ones, and no trace started by a client call.

A request or a task starts a trace (server, consumer, producer or internal span without a parent);
the share ``ratio`` of those is kept, decided by the trace id so every process agrees. Whatever a
kept trace's spans cause (any kind, in any process) belongs to it, whatever the ratio of that
process. A *client* span without a parent, though, is a call made on behalf of nothing — the outbox
relay's poll of its table, the discovery heartbeat, the broker transport's polling of Redis, a
metrics scrape's query — and would be a trace of one span every few seconds in every process:
never kept (nor is anything under it).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class EntryPointRatio(Sampler):
    """For spans without a parent: client spans never, the others by trace id ratio."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP, None, trace_state)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"EntryPointRatio{{{self._ratio.rate}}}"


def trace_sampler(ratio: float) -> Sampler:
    """The platform's sampler: a parent's decision is followed; new traces by :class:`EntryPointRatio`."""
    return ParentBased(root=EntryPointRatio(ratio))
