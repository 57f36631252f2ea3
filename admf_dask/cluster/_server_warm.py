"""Imported by the workers' forkserver when its workers may be warmed at start
(`admf_dask.cluster.start_forkserver`): the engine's kernels are loaded from numba's cache once,
in the server, and every worker forked from it has them (`admf_dask.cluster.plugin.warm_worker`
then finds nothing left to do), instead of each worker loading them itself as it starts.

Only from a warm cache: a cold one is compiled by the workers' setup as before (in the server
it would hold back every worker's start for the whole compile). Whatever fails here is left to
the workers' own setup: the forkserver must start in any case.
"""

from __future__ import annotations

from admf_dask.cluster._server import in_forkserver_start


def _warm() -> None:
    try:
        from admf_dask.cluster import kernel_cache_cold
        from admf_dask.cluster._server import import_numba_arrays
        from admf_dask.cluster.plugin import warm_worker

        if not kernel_cache_cold():
            import_numba_arrays()
            warm_worker()
    except Exception:  # noqa: BLE001, S110 - an optimization: the workers warm themselves
        pass


if in_forkserver_start():
    _warm()
