"""Imported first by the workers' forkserver when the CLI started it before importing dask
(`admf_dask.cluster.start_forkserver`): sets the nanny's ``pre-spawn-environ``
(``OMP_NUM_THREADS=1`` ...) in the server, before it imports numpy, as the CLI would have done
before starting it; the workers forked from the server inherit it. Imported anywhere else, it
does nothing.
"""

from __future__ import annotations

from admf_dask.cluster._server import in_forkserver_start

if in_forkserver_start():
    from admf_dask.cluster import _set_pre_spawn_environ

    _set_pre_spawn_environ()
