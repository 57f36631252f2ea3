"""A script read from standard input (``python - <<EOF``) starts the session cluster's workers:
multiprocessing would otherwise run its pseudo file ``<stdin>`` again in every worker (and in
the workers' forkserver), and no worker started ("Nanny failed to start")."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    from admf_dask.cluster import close_session, session_client, start_forkserver
    from admf_dask.config.models import ClusterConfig

    def double(x):
        return 2 * x

    if {forkserver}:
        start_forkserver()
    cfg = ClusterConfig(n_workers=1, threads_per_worker=1, ml_workers=0, dashboard_address=None)
    client = session_client(cfg)
    print(client.submit(double, 21).result(), __name__)
    close_session()
    """
)


@pytest.mark.parametrize("forkserver", [False, True], ids=["spawn", "forkserver"])
def test_a_script_from_stdin_starts_the_workers(forkserver):
    proc = subprocess.run(
        [sys.executable, "-"],
        input=SCRIPT.format(forkserver=forkserver),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["42", "__main__"], proc.stdout
