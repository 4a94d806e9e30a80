"""Reading back what a flow run left in the Prefect API (for tests)."""
from __future__ import annotations

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


def log_messages(flow_run_id, page: int = 200) -> list[str]:
    """Every log line of the flow run, oldest first (the API returns them a page at a time)."""
    from prefect.client.schemas.sorting import LogSort

    messages: list[str] = []
    with get_client(sync_client=True) as client:
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                    limit=page, offset=len(messages), sort=LogSort.TIMESTAMP_ASC)
            messages += [log.message for log in logs]
            if len(logs) < page:
                return messages


def task_states(flow_run_id) -> dict[str, str]:
    """task run name -> final state name."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: r.state.name for r in runs}


def task_times(flow_run_id) -> dict[str, tuple]:
    """task run name -> (start, end) of its final run."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: (r.start_time, r.end_time) for r in runs}


def task_run_counts(flow_run_id) -> dict[str, int]:
    """task run name -> how many times it ran (1 + retries taken)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: r.run_count for r in runs}
