"""The training stages over partitions on a Dask cluster: same rows, same seed, same answer.

Used when a run is given ``--dask-address``. The driver (the flow's process) only plans, fits on
samples and gathers small results; everything that grows with the data runs per partition on the
workers and is written per partition into the workspace (which the workers must share):

1. *plan*: CSV files are cut into byte ranges at record boundaries (quote-aware, so embedded
   newlines are safe); Parquet files (or a folder / glob of them) into row groups. A first pass
   counts the records of every partition, so every row keeps its global 0-based row number.
2. *roles*: the column roles are inferred on a seeded sample of raw rows gathered to the driver
   (every row when the data has at most :data:`FIT_ROWS` rows, so the roles equal the in-process
   run's).
3. *validate* per partition: valid rows to ``valid/part-NNNNN.parquet``, quarantined row numbers
   with their reasons to ``quarantine/``.
4. *fit the imputer* on the training rows (the gate's held-out rows left out), down to the
   seeded sample chosen exactly as in-process (:func:`clusterflow.stages.train_fit_rows`),
   gathered to the driver.
5. *transform* per partition: the imputer's ``transform`` and the encoder (loaded once per worker
   process) write ``imputed/`` and ``embeddings/``.
6. *sweep* on the driver: the feature builder and the sweep fit on the same samples as in-process.
7. *assign* per partition: feature building and the chosen model's assignment.

The outputs are then concatenated in partition order into the same stage handles the in-process
run produces (``labels.npy``, ``embeddings.npy`` as a memory map, the valid rows as a Parquet
folder), so registration and the contract outputs are shared code.

Modules: ``_plan`` (step 1: partitions, the ``PartitionJob`` a worker receives, reading one),
``_workers`` (what runs per partition, fanning it out with ``map_partitions`` /
``map_with_model``, and gathering rows back), ``_context`` (the frozen :class:`StageContext` the
driver's steps share once validation has counted the rows), ``_fit`` (the driver's fits on
samples: imputer, features and sweep, then the model's finishing touches), ``_driver``
(:func:`train_partitioned`, one function per step); ``_score`` and ``_monitor`` (the partitioned
score and monitor, which run each partition through a trained model).
"""

from clusterflow.partitioned._context import StageContext
from clusterflow.partitioned._driver import FIT_ROWS, PartitionedRun, train_partitioned
from clusterflow.partitioned._monitor import monitor_partitioned
from clusterflow.partitioned._plan import (
    PARTITION_BYTES,
    Partition,
    data_fingerprint,
    input_files,
    partition_size,
    plan_partitions,
    read_partition,
    worker_headroom,
)
from clusterflow.partitioned._score import score_partitioned

__all__ = [
    "FIT_ROWS",
    "PARTITION_BYTES",
    "Partition",
    "PartitionedRun",
    "StageContext",
    "data_fingerprint",
    "input_files",
    "monitor_partitioned",
    "partition_size",
    "plan_partitions",
    "read_partition",
    "score_partitioned",
    "train_partitioned",
    "worker_headroom",
]
