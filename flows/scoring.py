"""Batch scoring: assign every row of a table with a registered model.

Prefect entrypoint ``flows/scoring.py:scoring_flow`` (deployments name flows by file path). The
code is :mod:`clusterflow_orchestration.flows.scoring`; this file of the checkout only re-exports
it.
"""

from clusterflow_orchestration.flows.scoring import scoring_flow

__all__ = ["scoring_flow"]
