"""Deployment steps that run on the worker, so that one deployment serves every machine of a pool.

Prefect fills `{{ $VAR }}` placeholders in prefect.yaml when `prefect deploy` runs, on the
deploying machine: a `set_working_directory` step written that way sends every worker into the
deploying machine's path. `worker_checkout` decides on the worker instead, when the flow run starts.
"""
from __future__ import annotations

import os
from pathlib import Path

CHECKOUT_ENV = "DOMAIN_AUGMENT_CHECKOUT"


def _is_checkout(path: Path) -> bool:
    return (path / "dvc.yaml").is_file() and (path / ".git").exists()


def worker_checkout() -> dict[str, str]:
    """Pull step: change into this worker's checkout of the project and return it as the flow's
    working directory: `$DOMAIN_AUGMENT_CHECKOUT` when the worker's environment sets it, else the
    folder the worker was started in (`$PWD`, as the shell that started it set it)."""
    for var in (CHECKOUT_ENV, "PWD"):
        value = os.environ.get(var)
        if value:
            path = Path(value).expanduser().resolve()
            if _is_checkout(path):
                os.chdir(path)
                return {"directory": str(path)}
            _refuse(f"${var}={value} on this worker is not a checkout of the project (no dvc.yaml and .git there); "
                    f"start the worker in its checkout or with {CHECKOUT_ENV}=/path/to/its/checkout")
    _refuse(f"this worker's environment has neither {CHECKOUT_ENV} nor PWD; start it with {CHECKOUT_ENV}=/path/to/its/checkout")


def _refuse(message: str) -> None:
    """Raise `message`, having put it in the flow run's own log first: the pull step runs before the
    flow, and Prefect's UI showed only "Crashed: Process exited with status code: 1" (the message
    was in the worker's terminal alone)."""
    run_id = os.environ.get("PREFECT__FLOW_RUN_ID")
    if run_id:
        import contextlib
        import logging
        from datetime import datetime, timezone

        with contextlib.suppress(Exception):  # no API to tell: the worker's terminal still has it
            from prefect.client.orchestration import get_client
            from prefect.client.schemas.actions import LogCreate

            with get_client(sync_client=True) as client:
                client.create_logs([LogCreate(name="domain_augment.worker_checkout", level=logging.ERROR, message=message,
                                              timestamp=datetime.now(timezone.utc), flow_run_id=run_id)])
    raise RuntimeError(message)
