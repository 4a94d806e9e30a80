"""Entry points: DVC stages, typed params, Prefect flows and the CLI."""
