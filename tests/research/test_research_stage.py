"""The research statistics (docs/RESEARCH.md) against plain implementations of the formulas, and
known cases: identical portfolios, a pure-noise grid, one real edge among noise."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import research_reference as ref
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from admf_dask.errors import ConfigError
from admf_dask.metrics import compute_metrics
from admf_dask.research import _kernels as K
from admf_dask.research.config import ResearchConfig, check_research
from admf_dask.research.stage import research_stage, walk_forward_windows
from admf_dask.research.write import write_research


def _grid(rng, T=120, P=11, capital=100.0):
    """Noise plus two exact ties across chunks, a flat (never trading) portfolio and a
    skewed one."""
    eq = ref.noise_equity(rng, T, P, capital)
    eq[:, 7] = eq[:, 2]  # identical to an earlier portfolio in another chunk
    eq[:, 3] = capital  # returns all 0: SR not finite, ranked -inf
    jumps = np.where(rng.random(T) < 0.05, 0.08, -0.004 + rng.normal(0, 0.001, T))
    eq[:, 5] = capital * np.cumprod(1 + jumps)
    return eq


@pytest.mark.parametrize("seed", [0, 1])
def test_psr_dsr_match_the_formulas(tmp_path, seed):
    rng = np.random.default_rng(seed)
    eq = _grid(rng)
    store = ref.write_results(tmp_path / "r.zarr", eq)
    got = research_stage(store, ResearchConfig(cscv_blocks=6), chunk=4)
    want_psr, want_dsr = ref.psr_dsr(eq, 100.0)
    np.testing.assert_allclose(got.psr, want_psr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.dsr, want_dsr, rtol=1e-9, atol=1e-12)
    assert np.isnan(got.psr[3]) and np.isnan(got.dsr[3])  # flat: no finite SR
    assert got.summary["dsr"]["n"] == eq.shape[1] - 1
    r = ref.returns(eq, 100.0)
    srs = [ref.sharpe(r[:, p]) for p in range(eq.shape[1])]
    np.testing.assert_allclose(got.sharpe, srs, rtol=1e-12)
    assert got.summary["best"]["portfolio"] == ref.first_best(srs)


def test_dsr_needs_two_finite_sharpe_ratios(tmp_path):
    eq = ref.noise_equity(np.random.default_rng(5), 60, 2)
    eq[:, 1] = 100.0
    got = research_stage(ref.write_results(tmp_path / "r.zarr", eq), ResearchConfig(cscv_blocks=4))
    assert np.isfinite(got.psr[0]) and np.isnan(got.dsr).all()


@pytest.mark.parametrize("blocks, chunk", [(4, 3), (6, 4), (8, 64)])
def test_cscv_matches_the_literal_loop(tmp_path, blocks, chunk):
    eq = _grid(np.random.default_rng(blocks), T=97)
    store = ref.write_results(tmp_path / "r.zarr", eq)
    got = research_stage(store, ResearchConfig(cscv_blocks=blocks), chunk=chunk).summary["pbo"]
    want = ref.cscv(eq, 100.0, blocks)
    assert got["combinations"] == math.comb(blocks, blocks // 2)
    assert got["selected"] == want["selected"]
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-12, atol=1e-12)
    for key in ("pbo", "median_logit", "prob_oos_loss"):
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


def test_cscv_splits_are_combinations_in_order():
    ins, outs = K.cscv_splits(6)
    assert [tuple(x) for x in ins] == list(itertools.combinations(range(6), 3))
    for i, o in zip(ins, outs, strict=True):
        assert sorted({*i, *o}) == list(range(6)) and list(o) == sorted(o)
    for T in (8, 97, 100):
        edges = K.block_edges(T, 6)
        parts = np.array_split(np.arange(T), 6)
        assert [(p[0], p[-1] + 1) for p in parts] == list(zip(edges[:-1], edges[1:], strict=True))


def test_identical_portfolios_give_a_computable_pbo(tmp_path):
    one = ref.noise_equity(np.random.default_rng(3), 80, 1)
    eq = np.repeat(one, 9, axis=1)
    got = research_stage(ref.write_results(tmp_path / "r.zarr", eq), ResearchConfig(cscv_blocks=8))
    pbo = got.summary["pbo"]
    # every split: all tie, the first is selected and ranks in the middle (ω = 1/2, λ = 0)
    assert pbo["selected"] == [0] * 70
    np.testing.assert_array_equal(pbo["logits"], 0.0)
    assert pbo["pbo"] == 1.0 and pbo["median_logit"] == 0.0
    np.testing.assert_allclose(got.dsr, got.psr, rtol=1e-12)  # V = 0: SR0 = 0


def test_pure_noise_has_pbo_near_one_half_on_average(tmp_path):
    pbos = []
    for seed in range(12):
        eq = ref.noise_equity(np.random.default_rng(100 + seed), 240, 40)
        store = ref.write_results(tmp_path / f"r{seed}.zarr", eq, chunk=16)
        pbos.append(research_stage(store, ResearchConfig(cscv_blocks=8)).summary["pbo"]["pbo"])
    assert 0.35 < np.mean(pbos) < 0.65, pbos


def test_one_real_edge_among_noise(tmp_path):
    rng = np.random.default_rng(11)
    T, P = 500, 30
    r = rng.normal(0.0, 0.01, size=(T, P))
    r[:, 17] += 0.004  # per-bar SR about 0.4: a real edge
    eq = 100.0 * np.cumprod(1 + r, axis=0)
    got = research_stage(
        ref.write_results(tmp_path / "r.zarr", eq, chunk=8),
        ResearchConfig(cscv_blocks=10, walk_forward={"train": 100, "test": 50}),
    )
    assert got.summary["pbo"]["pbo"] < 0.05
    assert got.summary["best"]["portfolio"] == 17
    assert got.dsr[17] > 0.99 and np.nanmax(np.delete(got.dsr, 17)) < 0.5
    picks = [w["portfolio"] for w in got.summary["walk_forward"]["windows"]]
    assert picks.count(17) >= 0.75 * len(picks), picks


@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize("train, test", [(30, 20), (41, 7), (2, 2)])
def test_walk_forward_matches_the_plain_loop(tmp_path, anchored, train, test):
    eq = _grid(np.random.default_rng(train + test), T=113)
    store = ref.write_results(tmp_path / "r.zarr", eq)
    cfg = ResearchConfig(
        cscv_blocks=4, walk_forward={"train": train, "test": test, "anchored": anchored}
    )
    got = research_stage(store, cfg, chunk=4)
    rows, want_eq = ref.walk_forward(eq, 100.0, train, test, anchored)
    wins = got.summary["walk_forward"]["windows"]
    keys = ("is_start", "is_end", "oos_start", "oos_end", "portfolio")
    assert [tuple(w[k] for k in keys) for w in wins] == rows
    r = ref.returns(eq, 100.0)
    for w in wins:
        p = w["portfolio"]
        is_sr = ref.sharpe(r[w["is_start"] : w["is_end"], p])
        oos_sr = ref.sharpe(r[w["oos_start"] : w["oos_end"], p])
        assert (w["is_sharpe"] or math.nan) == pytest.approx(is_sr, rel=1e-9, nan_ok=True)
        assert (w["oos_sharpe"] or math.nan) == pytest.approx(oos_sr, rel=1e-9, nan_ok=True)
    assert wins[0]["is_from"] == "2020-01-01"
    np.testing.assert_allclose(got.wfo_equity, want_eq, rtol=1e-12, equal_nan=True)
    assert np.isnan(got.wfo_equity[:train]).all() and np.isfinite(got.wfo_equity[train:]).all()
    want_m = compute_metrics(want_eq[train:], 100.0, 252.0)
    for k, v in got.summary["walk_forward"]["metrics"].items():
        assert v == pytest.approx(float(want_m[k][0]), rel=1e-12, nan_ok=True), k


def test_walk_forward_windows_are_cut_at_the_last_bar():
    w = walk_forward_windows(10, 4, 3, anchored=False)
    assert w.tolist() == [[0, 4, 4, 7], [3, 7, 7, 10]]
    w = walk_forward_windows(11, 4, 3, anchored=True)
    assert w.tolist() == [[0, 4, 4, 7], [0, 7, 7, 10], [0, 10, 10, 11]]


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"cscv_blocks": 7}, "even"),
        ({"cscv_blocks": 2}, "at least 4"),
        ({"cscv_blocks": 40}, "at most 20"),
        ({"walk_forward": {"train": 1, "test": 5}}, "at least 2"),
        ({"walk_forward": {"train": 10, "test": 0}}, "at least 2"),
        ({"walk_forward": {"train": 10}}, "test"),
        ({"cscv_block": 8}, "cscv_block"),
    ],
)
def test_bad_settings_are_refused(raw, needle):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=needle):
        ResearchConfig.model_validate(raw)


def test_settings_the_data_cannot_meet(tmp_path):
    with pytest.raises(ConfigError, match="research.cscv_blocks: 16 blocks but the run has only"):
        check_research(ResearchConfig(), 12)
    with pytest.raises(ConfigError, match="research.walk_forward.train"):
        check_research(ResearchConfig(cscv_blocks=4, walk_forward={"train": 12, "test": 3}), 12)
    eq = ref.noise_equity(np.random.default_rng(0), 10, 3)
    with pytest.raises(ConfigError, match="cscv_blocks"):
        research_stage(ref.write_results(tmp_path / "r.zarr", eq), ResearchConfig(cscv_blocks=12))


def test_a_store_without_equity_is_refused(tmp_path):
    from admf_dask.errors import InputError

    with pytest.raises(InputError, match="holds no equity"):
        research_stage(tmp_path / "results.zarr", ResearchConfig())


def test_enabled_defaults_to_two_portfolios():
    assert not ResearchConfig().is_on(1) and ResearchConfig().is_on(2)
    assert ResearchConfig(enabled=True).is_on(1) and not ResearchConfig(enabled=False).is_on(5)


def test_write_adds_replaces_and_drops_variables(tmp_path):
    eq = ref.noise_equity(np.random.default_rng(2), 60, 5)
    store = ref.write_results(tmp_path / "results.zarr", eq)
    wf = ResearchConfig(cscv_blocks=4, walk_forward={"train": 20, "test": 10})
    first = research_stage(store, wf)
    write_research(tmp_path, first)
    ds = xr.open_zarr(store)
    np.testing.assert_array_equal(ds["psr"].values, first.psr)
    np.testing.assert_array_equal(ds["wfo_equity"].values, first.wfo_equity)
    np.testing.assert_array_equal(ds["equity"].values, eq)
    second = research_stage(store, ResearchConfig(cscv_blocks=6))
    write_research(tmp_path, second)
    ds = xr.open_zarr(store)
    assert "wfo_equity" not in ds and "psr" in ds and "dsr" in ds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["research.json", "results.zarr"]
    saved = json.loads((tmp_path / "research.json").read_text())
    assert saved["pbo"]["combinations"] == 20 and saved["walk_forward"] is None


def test_a_failed_write_leaves_the_old_state(tmp_path):
    from admf_dask.research.write import replace_variables

    eq = ref.noise_equity(np.random.default_rng(2), 60, 5)
    store = ref.write_results(tmp_path / "results.zarr", eq)
    write_research(tmp_path, research_stage(store, ResearchConfig(cscv_blocks=4)))
    before = xr.open_zarr(store)["psr"].values
    with pytest.raises(ValueError):
        replace_variables(store, {"psr": (("portfolio",), np.array(["x"] * 5, dtype=object))})
    np.testing.assert_array_equal(xr.open_zarr(store)["psr"].values, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["research.json", "results.zarr"]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_portfolios=st.integers(1, 9),
    blocks=st.sampled_from([4, 6]),
    chunk=st.integers(1, 5),
    copies=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=3),
    flat=st.lists(st.integers(0, 8), max_size=2),
)
def test_cscv_property_any_grid_with_ties(
    tmp_path_factory, seed, n_portfolios, blocks, chunk, copies, flat
):
    """Any grid (duplicates, flat curves, any chunking): the literal loop's selections and
    logits."""
    rng = np.random.default_rng(seed)
    eq = ref.noise_equity(rng, int(rng.integers(blocks, 40)), n_portfolios)
    for a, b in copies:
        eq[:, b % n_portfolios] = eq[:, a % n_portfolios]
    for f in flat:
        eq[:, f % n_portfolios] = 100.0
    store = ref.write_results(tmp_path_factory.mktemp("p") / "r.zarr", eq, chunk=chunk)
    got = research_stage(store, ResearchConfig(cscv_blocks=blocks), chunk=chunk).summary["pbo"]
    want = ref.cscv(eq, 100.0, blocks)
    assert got["selected"] == want["selected"]
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-12, atol=1e-12)


WARM_SCRIPT = """
import sys
import dask
sys.path[:0] = [{tests!r}, {root!r}]
import numpy as np
import research_reference as ref
from admf_dask.research import _kernels as K
from admf_dask.research.config import ResearchConfig
from admf_dask.research.stage import research_stage, warm_research

warm_research()
kernels = [v for v in vars(K).values() if hasattr(v, "signatures")]
loaded = {{k.__name__: len(k.signatures) for k in kernels}}
store = ref.write_results({store!r}, ref.noise_equity(np.random.default_rng(0), 90, 7))
cfg = ResearchConfig(cscv_blocks=4, walk_forward={{"train": 30, "test": 20}})
with dask.config.set(scheduler="synchronous"):
    research_stage(store, cfg, chunk=4)
after = {{k.__name__: len(k.signatures) for k in kernels}}
print(sorted(k for k in after if after[k] != loaded[k]))
"""


def test_warm_research_loads_the_kernels_the_tasks_call(tmp_path):
    # a fresh process: what warm_research loaded is all the stage's tasks call (a kernel
    # specialized for other argument types would be loaded again by the first research task)
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    script = WARM_SCRIPT.format(
        tests=str(here), root=str(here.parent), store=str(tmp_path / "r.zarr")
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", proc.stdout
