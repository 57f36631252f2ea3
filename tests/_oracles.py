"""Optional test tools (oracle libraries, headless Chromium): skipped locally, required in CI.

A test that compares against an outside oracle (TA-Lib, empyrical, vectorbt, scipy) or drives a
browser asks for it here instead of ``pytest.importorskip``: on a developer machine a missing tool
skips the test with the command that installs it; with ``CI=true`` it fails the test, so a broken
CI install can never turn into a green run of skipped tests. Only tools from the ``dev`` extra or
the system belong here: this package's own modules and its hard dependencies are imported plainly.

Usage (at module level or inside a test)::

    talib = require_module("talib")
    chromium = require_chromium()
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest
from browser import find_chromium

DEV_INSTALL = "pip install torch==2.13.0 -e '.[dev,notebooks]' (what `make test` runs)"
CHROMIUM_INSTALL = "apt-get install -y chromium, or set ADMF_CHROMIUM to a Chromium binary"


def in_ci() -> bool:
    """True when ``$CI`` is set to a true value (``true``, ``1``, ``yes``), as CI services do."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how: str) -> NoReturn:
    """Skip (locally) or fail (``CI=true``) because ``what`` is unavailable; ``how`` fixes it."""
    msg = f"{what} is not available; install it: {how}"
    if in_ci():
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg, allow_module_level=True)


def require_module(name: str, how: str = DEV_INSTALL) -> ModuleType:
    """Import and return module ``name``, or skip / fail (see `missing`) when it cannot be."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"module {name} ({exc})", how)


def require_chromium() -> str:
    """Return the headless Chromium binary (see `browser.find_chromium`), or skip / fail."""
    binary = find_chromium()
    if binary is None:
        missing("a chromium binary", CHROMIUM_INSTALL)
    return binary
