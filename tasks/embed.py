"""Embed: encode the text column with the offline MiniLM model, reporting progress.

The code is :mod:`clusterflow_orchestration.tasks.embed`; this file of the checkout only re-exports
it.
"""

from clusterflow_orchestration.tasks.embed import embed_task

__all__ = ["embed_task"]
