"""Names that moved in the issue-15 split still import from their old modules."""

import importlib

import numpy as np
import pytest

OLD_PATHS = {
    "clusterflow.registration": ["RECHECKS", "register_training", "Registration"],
    "clusterflow.schema": ["ColumnRoles", "infer_roles", "validate_records", "ROW_ID"],
    "clusterflow.io": ["READ_HOOKS", "read_table", "fingerprint", "file_format"],
    "clusterflow.model": ["ClusterModel", "dump_component", "load_component", "allowed_types"],
    "clusterflow.missingness": ["little_mcar_test", "MCAR_ALPHA", "profile_missingness"],
    "clusterflow.features": ["FeatureBuilder", "SKEW_THRESHOLD", "decide_tail"],
    "deployments.serve": ["PREFECT_YAML", "served_flows", "load_specs", "main"],
}


@pytest.mark.parametrize(("module", "names"), sorted(OLD_PATHS.items()))
def test_moved_names_import_from_their_old_module(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in names if not hasattr(loaded, name)]
    assert not missing, f"{module} lost {missing}"


def test_the_read_hooks_of_the_package_are_the_list_read_table_calls() -> None:
    from clusterflow import io
    from clusterflow.io import _read

    assert io.READ_HOOKS is _read.READ_HOOKS


def test_a_blend_without_parts_is_refused() -> None:
    from clusterflow.impute._selection import _MeanImputer

    with pytest.raises(ValueError, match="at least one imputer"):
        _MeanImputer(parts=()).fit(np.zeros((3, 2)))
