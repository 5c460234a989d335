"""User-facing error types, in one module that every layer may import (it imports nothing).

Each carries a one-line message that names the problem and the fix; the CLI prints it as
``stbench: error: <message>`` and exits non-zero, without a traceback unless ``--debug``.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class StbenchError(Exception):
    """Base of every error that is the user's to fix (bad input, missing file, wrong checkpoint)."""


class UserError(StbenchError):
    """A problem with the user's command-line input."""


class RecipeError(StbenchError, ValueError):
    """A recipe (``baselines/<dataset>.toml``, a preset, a ``--set`` override) is missing or malformed."""


class CheckpointError(StbenchError, ValueError):
    """A checkpoint or weights file cannot be read, or does not fit the model it is loaded into."""


class ModelArgumentError(StbenchError, TypeError):
    """A model was asked for an argument (e.g. ``--set model.hid_X=3``) that none of its components takes."""


class DataError(StbenchError, ValueError):
    """A data file is missing, unreadable or not in the expected format."""


class DatasetArgumentError(StbenchError, TypeError):
    """A dataset was asked for an option (e.g. ``--set data.nosuch=3``) that it does not take."""
