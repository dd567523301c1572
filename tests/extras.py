"""Optional dependencies in tests: skipped where they are not installed, except where
``STLNMF_REQUIRE_EXTRAS=1`` (scripts/test.sh sets it): there a missing or broken extra
fails the run instead of skipping its tests silently (spatialdata 0.7.0, which imports the
removed ``pkg_resources``, once skipped them all)."""

from __future__ import annotations

import importlib
import os

import pytest


def optional(module: str):
    """The module, or skip the test module (fail under STLNMF_REQUIRE_EXTRAS=1)."""
    if os.environ.get("STLNMF_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)
