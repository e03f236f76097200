"""Import an optional extra for a test module: skip without it locally, FAIL in CI.

CI (``CI=true``, set by ``.ci/run``) installs every extra, so a missing one there is a
broken install, not a reason to skip.
"""
import importlib
import os

import pytest


def require(module):
    """The imported ``module``; ``pytest.skip`` (or, when ``CI=true``, fail) if it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"CI=true but the optional package {module!r} does not import: {err}") from err
        pytest.skip(f"optional package {module!r} is not installed", allow_module_level=True)
