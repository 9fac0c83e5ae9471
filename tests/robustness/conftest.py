"""Stop the Prefect servers that ``clusterflow train`` keeps running under a test's folder.

A training started without a Prefect API starts one local server per workspace and leaves it
running for the next commands (``clusterflow_cli/server.py``). The server has its own session,
so a SIGKILL of the training's process group does not reach it either. Without this clean-up
every crash or concurrency test left one to three servers behind (about 250 MB each).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _stop_kept_servers(request):
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path = request.getfixturevalue("tmp_path")  # set up before: torn down after this
    yield
    from clusterflow_cli import stack

    for state in tmp_path.glob("**/stack/stack.json"):
        stack.down(state.parent.parent, echo=lambda _msg: None)
