"""Reading back what a flow run left in the Prefect API (for tests)."""
from __future__ import annotations

import time

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)


def artifacts(flow_run_id, key: str | None = None) -> list:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            **({"key": ArtifactFilterKey(any_=[key])} if key else {}),
        ))


def log_messages(flow_run_id, *, until: str | None = None, timeout: float = 60, page: int = 200) -> list[str]:
    """Every log line of the flow run, oldest first (the API returns them a page at a time). A flow
    run's last lines reach the API after its final state: with `until`, wait up to `timeout` s for a
    line containing it."""
    from prefect.client.schemas.sorting import LogSort

    deadline = time.time() + timeout
    while True:
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while True:
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                        limit=page, offset=len(messages), sort=LogSort.TIMESTAMP_ASC)
                messages += [log.message for log in logs]
                if len(logs) < page:
                    break
        if until is None or any(until in m for m in messages) or time.time() > deadline:
            return messages
        time.sleep(1)


def _task_runs(flow_run_id, expect=(), timeout: float = 60) -> list:
    """The flow run's task runs, once each has a final state and every name in `expect` is among
    them (task runs reach the API as events, a moment after the flow run's own final state, and on
    a busy machine some arrive seconds later than others)."""
    deadline = time.time() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        arrived = set(expect) <= {r.name for r in runs}
        if (arrived and all(r.state is not None and r.state.is_final() for r in runs)) or time.time() > deadline:
            return runs
        time.sleep(1)


def task_states(flow_run_id, expect=()) -> dict[str, str]:
    """task run name -> final state name (waiting for the names in `expect`)."""
    return {r.name: r.state.name for r in _task_runs(flow_run_id, expect)}


def task_times(flow_run_id, expect=()) -> dict[str, tuple]:
    """task run name -> (start, end) of its final run (waiting for the names in `expect`)."""
    return {r.name: (r.start_time, r.end_time) for r in _task_runs(flow_run_id, expect)}


def task_run_counts(flow_run_id, expect=()) -> dict[str, int]:
    """task run name -> how many times it ran (1 + retries taken; waiting for the names in `expect`)."""
    return {r.name: r.run_count for r in _task_runs(flow_run_id, expect)}
