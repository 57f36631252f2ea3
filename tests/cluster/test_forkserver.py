"""Stopping the workers' forkserver never waits for workers forked from it that another cluster
still runs (each holds a copy of the server's "alive" pipe), and a new server starts after it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from distributed import Client, LocalCluster
    from admf_dask.cluster import start_forkserver, stop_forkserver

    if __name__ == "__main__":
        kw = dict(n_workers=1, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
        start_forkserver()
        with LocalCluster(**kw) as a, Client(a) as ca:
            stop_forkserver()  # a's worker still runs: this must not wait for it
            start_forkserver()
            with LocalCluster(**kw) as b, Client(b) as cb:
                print(ca.submit(sum, [1, 2]).result(), cb.submit(sum, [3, 4]).result())
            stop_forkserver()
        print("closed")
    """
)


def _run_script(tmp_path, text: str, env: dict | None = None) -> list[str]:
    """Run `text` as a script in a fresh interpreter; the words it printed (it must exit 0)."""
    script = tmp_path / "script.py"
    script.write_text(text)
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_stop_forkserver_does_not_wait_for_another_clusters_workers(tmp_path):
    # a stop that waited for cluster a's worker would never return (a closes only after it)
    assert _run_script(tmp_path, SCRIPT) == ["3", "7", "closed"]


EARLY = textwrap.dedent(
    """
    import os
    import sys

    from admf_dask.cluster import start_forkserver, stop_forkserver

    def worker_env():
        order = list(sys.modules)
        return (
            os.environ.get("OMP_NUM_THREADS"),
            order.index("admf_dask.cluster._server_environ") < order.index("numpy"),
        )

    if __name__ == "__main__":
        assert "dask" not in sys.modules
        start_forkserver()  # as the CLI does, first of all: before dask is imported
        here = os.environ.get("OMP_NUM_THREADS")
        from distributed import Client, LocalCluster

        kw = dict(n_workers=1, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
        with LocalCluster(**kw) as cluster, Client(cluster) as client:
            (there,) = client.run(worker_env).values()
        stop_forkserver()
        print(here, *there)
    """
)


def test_a_server_started_before_dask_sets_the_nannys_environment_before_numpy(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    # this process and the workers (forked from the server, which set it before numpy)
    assert _run_script(tmp_path, EARLY, env) == ["1", "1", "True"]


NO_LINALG = textwrap.dedent(
    """
    import sys

    from admf_dask.cluster import kernel_cache_cold, start_forkserver, stop_forkserver

    def worker_state():
        from admf_dask.portfolio import _kernels as K
        from admf_dask.portfolio.tasks import warm_kernels

        loaded = bool(K.step_chunk.signatures)  # the server loaded the kernels before the fork
        warm_kernels()  # the kernels run
        hidden = "scipy.linalg" not in sys.modules
        import scipy.linalg  # noqa: F401 - and scipy is importable again

        return loaded, hidden

    if __name__ == "__main__":
        assert not kernel_cache_cold(), "run `make dev` first: it fills numba's cache"
        start_forkserver()
        from distributed import Client, LocalCluster

        kw = dict(n_workers=1, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
        with LocalCluster(**kw) as cluster, Client(cluster) as client:
            (there,) = client.run(worker_state).values()
        stop_forkserver()
        print(*there)
    """
)


def test_the_server_loads_the_kernels_without_scipy_linalg(tmp_path):
    # numba's array registry imports scipy.linalg only to look for BLAS (a third of a second of
    # the server's start): the server hides it, and the kernels load and run without it
    assert _run_script(tmp_path, NO_LINALG) == ["True", "True"]
