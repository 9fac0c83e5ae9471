"""The training flow: ingest -> validate -> impute | embed -> sweep -> register -> outputs.

Prefect entrypoint ``flows/training.py:training_flow`` (deployments name flows by file path). The
code is :mod:`clusterflow_orchestration.flows.training`; this file of the checkout only re-exports
it.
"""

from clusterflow_orchestration.flows.training import imputer_threads, run_id_now, training_flow

__all__ = ["imputer_threads", "run_id_now", "training_flow"]
