"""The Prefect layer of clusterflow: tasks, flows and deployments, installed under one name.

- :mod:`.tasks`: one thin ``@task`` per stage (retries, artifacts, logging); the logic is in
  :mod:`clusterflow`.
- :mod:`.flows`: the flows compose the tasks (training, monitoring, scoring, partitioned).
- :mod:`.deployments`: serving and deploying ``prefect.yaml``, the Dask task runners.

The repository's top-level ``flows/``, ``tasks/`` and ``deployments/`` folders are where a reader
looks first: they hold the Prefect entrypoints ``prefect.yaml`` names by path
(``flows/training.py:training_flow``), one-line re-exports of the modules here, and
``deployments/prefect.yaml`` itself (``deployments/prefect.yaml`` in this package links to it, so
that it installs as package data). Those folders are not installed: generic names such as
``tasks`` would collide with other packages in site-packages.
"""
