"""`identity`: one deterministic key function, equal across processes, distinguishing types."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from admf_dask.dasktools import identity

PAYLOAD = {"kind": "sma", "params": {"window": 20, "field": "close"}, "chunks": [[100, 100]]}


def test_equal_in_another_process():
    code = (
        "from admf_dask.dasktools import identity\n"
        "print(identity({'chunks': [[100, 100]], 'params': {'field': 'close', 'window': 20}, "
        "'kind': 'sma'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.strip() == identity(PAYLOAD)  # dict key order does not matter


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1, 2], (1, 2)),
        (1, 1.0),
        (1, "1"),
        (True, 1),
        (None, "None"),
        ({"a": 1}, {"a": 2}),
        ("ab", ("a", "b")),
        (np.arange(3.0), np.arange(3.0) + 1),
    ],
)
def test_distinguishes(a, b):
    assert identity(a) != identity(b)


def test_length_and_hex():
    assert len(identity(PAYLOAD)) == 32 and len(identity(PAYLOAD, length=16)) == 16
    int(identity(PAYLOAD), 16)
    assert identity(PAYLOAD, length=16) == identity(PAYLOAD)[:16]


def test_non_deterministic_objects_raise():
    class Opaque:
        __slots__ = ("x",)

        def __reduce__(self):
            raise TypeError("not picklable")

    with pytest.raises(Exception, match="[Dd]eterministic"):
        identity(Opaque())


def test_the_package_attribute_stays_the_function_once_its_module_is_imported():
    # a submodule named like the function would replace it on the package when first imported
    import importlib

    import admf_dask.dasktools as dt

    importlib.import_module("admf_dask.dasktools.ids")
    assert callable(dt.identity) and dt.identity("x") == identity("x")
