"""Imported first by the workers' forkserver (`admf_dask.cluster.start_forkserver`): it imports
``dask.array`` without scipy (`admf_dask.cluster._server.import_dask_array`), so neither the
server nor the workers forked from it pay for scipy modules the engine never uses. Imported
anywhere else, it does nothing.
"""

from __future__ import annotations

from admf_dask.cluster._server import import_dask_array, in_forkserver_start

if in_forkserver_start():
    import_dask_array()
