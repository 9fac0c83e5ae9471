"""Column roles and validation at the boundary between raw input and the pipeline.

Raw data is *unchecked* until :func:`validate_records` has run. Validation is lazy (pandera collects
every failure, not the first) and row-level: a row that fails any check goes to the quarantine with
the reasons, in words, and is excluded from training. Nothing is silently dropped.

Validation runs in two pandera passes so that every failure is reported:

1. *types*: each numeric column must coerce to float (``"abc"`` in a number column fails here);
2. *checks*: on the coerced values (the cells that failed pass 1 blanked): numbers finite, the id
   unique (the first occurrence is kept), and every row carrying at least one usable feature.

Modules: ``_roles`` (:class:`ColumnRoles`, :data:`ROW_ID` and :data:`CLUSTER_COLUMN`),
``_inference`` (:func:`infer_roles`, :func:`check_named_columns` and :func:`check_id_name`: each
column's role from the options and the values), ``_schemas`` (the pandera schemas of both
passes and :func:`post_impute_schema`) and ``_validation`` (:func:`coerce_numeric`,
:func:`validate_records` and the quarantine reasons).
"""

from clusterflow.schema._inference import check_id_name, check_named_columns, infer_roles
from clusterflow.schema._roles import CLUSTER_COLUMN, ROW_ID, ColumnRoles
from clusterflow.schema._schemas import post_impute_schema
from clusterflow.schema._validation import (
    ValidationOutcome,
    coerce_numeric,
    reason_group,
    validate_records,
)

__all__ = [
    "CLUSTER_COLUMN",
    "ROW_ID",
    "ColumnRoles",
    "ValidationOutcome",
    "check_id_name",
    "check_named_columns",
    "coerce_numeric",
    "infer_roles",
    "post_impute_schema",
    "reason_group",
    "validate_records",
]
