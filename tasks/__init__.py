"""The tasks, where a reader of the checkout looks: one file per module of the real package.

Each file re-exports one module of :mod:`clusterflow_orchestration.tasks`, where the code is. This
folder is not installed (a top-level package named ``tasks`` would collide with others).
"""
