"""Typed errors: every failure a user can cause names what broke and how to fix it.

Each error carries a one-line ``hint`` (what to do) beside its message (what is wrong), so the
command line can print ``<message>: <hint>`` as a single line without a traceback.
"""

from __future__ import annotations


class ClusterflowError(Exception):
    """Base class of every error clusterflow raises on purpose.

    Parameters
    ----------
    message : str
        What is wrong, naming the file, column or row concerned.
    hint : str, optional
        What the user can do about it.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """Return the message and the hint folded onto one line."""
        text = " ".join(self.message.split())
        if self.hint:
            # "...not found." + "; hint" would read "found.; hint": the hint replaces the stop.
            text = f"{text.rstrip('.;: ')}; {' '.join(self.hint.split())}"
        return text


class InputError(ClusterflowError):
    """The input file cannot be read as a table (missing, unreadable, wrong format)."""


class ConfigError(ClusterflowError):
    """The options do not fit the data (unknown column, k range, weights)."""


class ValidationFailed(ClusterflowError):
    """Validation left nothing usable, or a post-condition of a stage did not hold."""


class NoViableClustering(ClusterflowError):
    """No candidate of the sweep produced a usable clustering."""


class EmbeddingError(ClusterflowError):
    """The embedding model could not be loaded or returned vectors of the wrong shape."""


class RegistryError(ClusterflowError):
    """The model registry could not be read or written consistently."""
