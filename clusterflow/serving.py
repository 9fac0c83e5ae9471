"""The MLflow pyfunc that serves a :class:`~clusterflow.model.ClusterModel`.

Loaded with ``mlflow.pyfunc.load_model("models:/<name>@champion")``, it takes a raw frame (the
training columns; extra columns are ignored) and returns ``cluster``, ``distance`` and ``novel``.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from clusterflow.model import ClusterModel


class ClusterPyfunc(mlflow.pyfunc.PythonModel):
    """Assigns raw rows to the clusters of the wrapped model."""

    def load_context(self, context) -> None:
        """Load the saved ClusterModel from the model's artifacts."""
        self.model = ClusterModel.load(context.artifacts["model"])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Return ``cluster``, ``distance`` and ``novel`` for each input row."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.model.predict(model_input).reset_index(drop=True)
