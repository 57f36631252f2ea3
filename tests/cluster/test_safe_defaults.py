"""Safe defaults: everything a run starts listens on 127.0.0.1 only."""

from __future__ import annotations

import psutil


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            out.append((conn.pid, conn.laddr.ip, conn.laddr.port))
    return out


def test_session_cluster_listens_on_loopback_only(small_pipeline, tmp_path):
    import admf_dask as ad
    from admf_dask.cluster import close_session

    small_pipeline["output"]["path"] = str(tmp_path / "run")
    try:
        res = ad.run(small_pipeline)
        me = psutil.Process()
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        sockets = _listening(pids)
        # scheduler, dashboard, 1 nanny + 1 worker at least
        assert len(sockets) >= 4, sockets
        assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets
        dash = res.manifest["cluster"]["dashboard"]
        assert dash.startswith("http://127.0.0.1:")
    finally:
        close_session()
