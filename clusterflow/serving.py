"""The MLflow pyfunc that serves a :class:`~clusterflow.model.ClusterModel`.

Loaded with ``mlflow.pyfunc.load_model("models:/<name>@champion")``, it takes a raw frame (the
training columns; extra columns are ignored) and returns ``cluster``, ``distance`` and ``novel``.

The wrapper is logged as MLflow "models from code": the model version stores the small script
written by :func:`write_entry_script` (it imports this class and calls
``mlflow.models.set_model``) instead of a cloudpickle of the Python object, so loading needs neither
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` nor the same Python/cloudpickle version. The fitted parts
travel as the ``model`` artifact folder written by :meth:`ClusterModel.save` (skops files).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from clusterflow.model import ClusterModel

ENTRY_SCRIPT = '''"""MLflow models-from-code entry point of a clusterflow model."""

import mlflow

from clusterflow.serving import ClusterPyfunc

mlflow.models.set_model(ClusterPyfunc())
'''


def write_entry_script(folder: str | Path) -> Path:
    """Write the models-from-code script into ``folder`` and return its path."""
    path = Path(folder) / "clusterflow_model.py"
    path.write_text(ENTRY_SCRIPT)
    return path


class ClusterPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]  # lazy module
    """Assigns raw rows to the clusters of the wrapped model."""

    def load_context(self, context) -> None:
        """Load the saved ClusterModel from the model's ``model`` artifact folder."""
        self.model = ClusterModel.load(context.artifacts["model"])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Return ``cluster``, ``distance`` and ``novel`` for each input row (index reset)."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.model.predict(model_input).reset_index(drop=True)
