"""The deployments, where a reader of the checkout looks: prefect.yaml and its entrypoints.

``prefect.yaml`` is the single source of the deployments (the package installs it as
``clusterflow_orchestration/deployments/prefect.yaml``, a link to this file).
``dask_training.py`` is a Prefect entrypoint; the other files re-export one module of
:mod:`clusterflow_orchestration.deployments`, where the code is. This folder is not installed (a
top-level package named ``deployments`` would collide with others).
"""
