"""The challenger: the swept model, the rows it is gated on, and its gate against the champion.

:func:`clusterflow.registration.register_training` gates the challenger against the champion as
it is before registering it (:func:`gate_against_champion`), and again right before the alias
moves if another training moved the champion meanwhile (:func:`regate_if_moved`). The gate
itself is :func:`clusterflow.gate.decide`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clusterflow import gate
from clusterflow.config import TrainConfig
from clusterflow.model import ClusterModel
from clusterflow.model_registry import champion_version, load_champion, load_version
from clusterflow.stages import Embedded, Swept, Validated

__all__ = ["RECHECKS", "Challenger", "gate_against_champion", "load_challenger", "regate_if_moved"]

logger = logging.getLogger(__name__)

RECHECKS = 3
"""How often the champion is re-read (and the gate re-run) before the alias moves."""


@dataclass(frozen=True)
class Challenger:
    """The model being registered, the valid rows and the gate's arguments for it."""

    model: ClusterModel
    valid: pd.DataFrame
    gate_args: dict[str, Any]


def load_challenger(
    config: TrainConfig, validated: Validated, embedded: Embedded | None, swept: Swept
) -> Challenger:
    """Load the swept model and the rows it is gated on (before any run exists)."""
    model = ClusterModel.load(swept.model_dir)
    valid = pd.read_parquet(validated.valid_path)
    gate_args: dict[str, Any] = {
        "resamples": config.registry.bootstrap,
        "random_state": config.random_state,
        "replace_incompatible": config.registry.replace_incompatible,
        **_gate_rows(valid, swept, embedded, config.random_state),
    }
    return Challenger(model, valid, gate_args)


def _gate_rows(
    valid: pd.DataFrame, swept: Swept, embedded: Embedded | None, random_state: int
) -> dict[str, Any]:
    """Return the rows the gate judges on: the held-out rows and a sample of the training rows.

    Returned as :func:`clusterflow.gate.decide` keywords (``holdout``, ``reference`` and their
    text vectors).
    """
    held = swept.holdout()
    fitted = gate.reference_positions(len(valid), held, random_state=random_state)
    vectors = np.load(embedded.path) if embedded else None
    return {
        "holdout": valid.iloc[held],
        "challenger_embeddings": None if vectors is None else vectors[held],
        "reference": valid.iloc[fitted],
        "reference_embeddings": None if vectors is None else vectors[fitted],
    }


def gate_against_champion(name: str, challenger: Challenger) -> gate.GateDecision:
    """Gate the challenger against the champion as it is now."""
    champion, previous = load_champion(name)
    return gate.decide(
        challenger.model, champion, champion_version=previous, **challenger.gate_args
    )


def regate_if_moved(
    name: str,
    decision: gate.GateDecision,
    challenger: ClusterModel,
    gate_args: dict,
) -> gate.GateDecision:
    """Gate again if another training moved ``champion`` since ``decision`` was taken.

    The cluster map of the first decision is kept (it is already inside the logged model).
    """
    for _ in range(RECHECKS):
        current = champion_version(name)
        current_version = str(current.version) if current is not None else None
        if current_version == decision.champion_version:
            return decision
        logger.info(
            "champion of %s moved from %s to %s during this run; gating again",
            name,
            decision.champion_version,
            current_version,
        )
        champion = load_version(name, current_version) if current_version else None
        again = gate.decide(challenger, champion, champion_version=current_version, **gate_args)
        decision = decision.again(again, "re-checked: the champion moved during this run")
    return decision
