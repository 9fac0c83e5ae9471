"""The flows, where a reader of the checkout looks: Prefect entrypoints by file path.

``deployments/prefect.yaml`` names each flow by its file here (``flows/training.py:training_flow``);
each file re-exports one module of :mod:`clusterflow_orchestration.flows`, where the code is. This
folder is not installed (a top-level package named ``flows`` would collide with others);
installed, the same paths resolve inside ``clusterflow_orchestration/``.
"""
