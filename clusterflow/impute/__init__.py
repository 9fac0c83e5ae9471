"""Fill the gaps of a mixed table, choosing the imputer by measurement rather than by habit.

Laid out like ``sklearn.impute``:

- ``_knn``: :class:`FastKNNImputer` imputes a numeric matrix from its nearest complete-enough
  rows. It finds candidate donors through a KD-tree in a low-dimensional principal subspace
  (each row placed from its observed values only), re-ranks them with the exact
  ``nan_euclidean`` distance that scikit-learn's ``KNNImputer`` uses, and averages the
  ``n_neighbors`` closest donors that observe the column. This keeps ``KNNImputer``'s accuracy
  at a fraction of its time and memory.
- ``_simple``: column statistics (mean, median, most frequent) of the encoded matrix.
- ``_iterative``: chained equations on the encoded matrix, linear (MICE) or with extra-trees
  (MissForest-style), categoricals predicted as whole one-hot blocks.
- ``_table``: :class:`TableImputer` works on a ``pandas.DataFrame`` with numeric and categorical
  columns (encoding in ``_encoding``). With ``method="auto"`` it hides a share of the known
  values, imputes them with every candidate and with the averages of the model-based ones
  (blends), scores each against the truth and keeps the best (``_selection``; the scores are
  kept in ``scores_`` and, per column, ``column_scores_``).
"""

from clusterflow.impute._knn import FastKNNImputer
from clusterflow.impute._selection import BLENDS, CANDIDATES, SCORED
from clusterflow.impute._table import METHODS, TableImputer

__all__ = ["BLENDS", "CANDIDATES", "METHODS", "SCORED", "FastKNNImputer", "TableImputer"]
