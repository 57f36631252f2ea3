"""One identity function for every content key of the package (cache keys, model ids, hashes)."""

from __future__ import annotations

from typing import Any


def identity(*parts: Any, length: int = 32) -> str:
    """Deterministic hex token of `parts`, the same in every process and on every run.

    Built on `dask.base.tokenize` with ``ensure_deterministic=True``: plain data (str, int,
    float, bool, None, lists, tuples, dicts in any key order, numpy arrays) always tokenizes the
    same; an object that cannot be tokenized deterministically raises instead of giving a key
    that would never match again. Lists and tuples, ``1`` and ``1.0``, ``1`` and ``"1"`` all give
    different tokens.

    Parameters
    ----------
    *parts
        What the key identifies.
    length : int
        Hex digits kept (at most 32).

    Returns
    -------
    str
    """
    from dask.base import tokenize

    return tokenize(*parts, ensure_deterministic=True)[:length]
