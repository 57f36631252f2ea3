"""Grid expansion: order, resolution of each parameter, labels, errors, batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
from admf_dask.errors import ConfigError
from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio import expand_grid
from admf_dask.portfolio.grid import duplicate_note, effective_groups, run_groups

NAMES = ["trend", "mine", "rsi"]


def _book(n_symbols=4, names=NAMES, execution=None, **portfolios):
    return expand_grid(
        PortfoliosConfig(**portfolios), execution or ExecutionConfig(), names, n_symbols
    )


def test_product_order_and_coords():
    grid = {
        "stop_loss": [None, 0.05, 0.1],
        "strategy": ["trend", {"trend": 0.5, "mine": 0.5}],
        "allow_short": [False, True],
    }
    book = _book(grid=grid)
    assert book.n_portfolios == 12 == len(book)
    combos = list(itertools.product(*grid.values()))
    for i, (sl, strat, short) in enumerate(combos):
        assert (np.isnan(book.stop_loss[i]) and sl is None) or book.stop_loss[i] == sl
        assert book.allow_short[i] == short
        want = strat if isinstance(strat, str) else "trend:0.5+mine:0.5"
        assert book.strategy_label[i] == want
    assert list(book.coords()) == ["stop_loss", "strategy", "allow_short"]
    np.testing.assert_array_equal(book.strategy_weights[2], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(book.strategy_weights[0], [1.0, 0.0, 0.0])


def test_parameter_resolution():
    execution = ExecutionConfig(commission=0.001, commission_fixed=2.0, slippage_bps=7)
    book = _book(
        n_symbols=8,
        execution=execution,
        commission=0.0003,
        max_gross=1.5,
        grid={"slippage_bps": [None, 1.0], "position_weight": [None, 0.2]},
    )
    np.testing.assert_array_equal(book.slippage_bps, [7.0, 7.0, 1.0, 1.0])
    np.testing.assert_array_equal(book.position_weight, [0.125, 0.2, 0.125, 0.2])
    assert np.all(book.commission == 0.0003) and np.all(book.commission_fixed == 2.0)
    assert np.all(book.max_gross == 1.5) and np.all(np.isnan(book.max_drawdown))
    assert book.fparams().shape == (4, K.N_FPARAMS)
    assert np.all(book.fparams()[:, K.F_SLIPPAGE_BPS] == book.slippage_bps)


def test_default_strategy_mix():
    book = _book()
    assert book.n_portfolios == 1
    np.testing.assert_allclose(book.strategy_weights[0], [1 / 3] * 3)
    assert book.strategy_label[0] == "trend:0.333333+mine:0.333333+rsi:0.333333"
    one = _book(names=["trend"])
    assert one.strategy_label[0] == "trend" and one.strategy_weights[0, 0] == 1.0
    named = _book(strategy={"mine": 2.0})
    np.testing.assert_array_equal(named.strategy_weights[0], [0.0, 2.0, 0.0])
    assert named.strategy_label[0] == "mine:2"


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"grid": {"strategy": ["trend", "trnd"]}}, "portfolios.grid.strategy"),
        ({"grid": {"strategy": [{"trend": 1.0, "mien": 1.0}]}}, "portfolios.grid.strategy"),
        ({"strategy": "mien"}, "portfolios.strategy"),
    ],
)
def test_unknown_strategy_is_a_config_error(kwargs, where):
    with pytest.raises(ConfigError) as err:
        _book(**kwargs)
    assert err.value.where == where
    assert "did you mean" in err.value.line


def test_vol_target_needs_a_vol_feature():
    with pytest.raises(ConfigError) as err:
        _book(grid={"sizing": ["fixed", "vol_target"]})
    assert err.value.where == "portfolios.vol_feature"
    with pytest.raises(ConfigError) as err:
        expand_grid(
            PortfoliosConfig(sizing="vol_target", vol_feature="vol_2O"),
            ExecutionConfig(),
            NAMES,
            3,
            feature_names=["vol_20", "sma_5"],
        )
    assert "did you mean 'vol_20'" in err.value.line
    book = _book(grid={"sizing": ["fixed", "vol_target"], "vol_feature": ["a", "b"]})
    assert book.vol_features == ("a", "b")
    np.testing.assert_array_equal(book.vol_index, [-1, -1, 0, 1])


def test_batches_and_dataset():
    book = _book(
        batch_size=4, grid={"max_position": [0.1, 0.2, 0.3, 0.4, 0.5], "stop_loss": [None, 0.1]}
    )
    assert book.batches() == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert book.batches(3)[-1] == slice(9, 10)
    ds = book.dataset(slice(4, 8), symbols=["A", "B", "C", "D"])
    assert ds.sizes == {"portfolio": 4, "strategy": 3, "symbol": 4}
    assert ds.portfolio.values.tolist() == [4, 5, 6, 7]
    assert np.all(ds.cash.values == book.capital) and np.all(ds.positions.values == 0)
    assert ds.strategy_weights.dims == ("portfolio", "strategy")
    np.testing.assert_array_equal(ds.max_position.values, book.max_position[4:8])


def test_mix_index_groups_identical_weights():
    book = _book(grid={"strategy": ["trend", "mine", "trend"], "stop_loss": [None, 0.1]})
    assert book.mixes.shape == (2, 3)
    np.testing.assert_array_equal(book.mixes[book.mix_index], book.strategy_weights)


# -- duplicates: equal effective parameters ----------------------------------------------------


def test_target_vol_has_no_effect_with_fixed_sizing():
    book = _book(
        grid={"sizing": ["fixed", "vol_target"], "target_vol": [0.1, 0.2, 0.3]}, vol_feature="vol"
    )
    # ids: (fixed, .1) (fixed, .2) (fixed, .3) (vt, .1) (vt, .2) (vt, .3)
    np.testing.assert_array_equal(effective_groups(book), [0, 0, 0, 3, 4, 5])
    note = duplicate_note(book, {"sizing": [0, 0], "target_vol": [0, 0, 0]})
    assert note.startswith("2 of 6 portfolios duplicate another's effective parameters")
    assert "target_vol has no effect with sizing fixed" in note


def test_position_weight_is_ignored_by_vol_target_and_null_is_one_over_n():
    book = _book(
        n_symbols=4,
        vol_feature="vol",
        grid={"sizing": ["vol_target", "fixed"], "position_weight": [None, 0.25, 0.5]},
    )
    np.testing.assert_array_equal(effective_groups(book), [0, 0, 0, 3, 3, 5])
    note = duplicate_note(book, {"sizing": [0, 0], "position_weight": [0, 0, 0]})
    assert note.startswith("3 of 6")
    assert "position_weight has no effect with sizing vol_target" in note


def test_null_costs_equal_the_execution_default():
    book = _book(
        execution=ExecutionConfig(commission=0.001),
        grid={"commission": [None, 0.001, 0.002], "slippage_bps": [None, 2.0]},
    )
    # slippage default is 2 bps: null and 2.0 are the same too
    np.testing.assert_array_equal(effective_groups(book), [0, 0, 0, 0, 4, 4])
    note = duplicate_note(book, {"commission": [0, 0, 0], "slippage_bps": [0, 0]})
    assert "commission null is execution.commission" in note
    assert "slippage_bps null is execution.slippage_bps" in note


def test_caps_that_cannot_bind_and_portfolios_that_never_trade():
    # fixed sizing, 4 symbols, position_weight 0.25: |w| <= 0.25, gross <= 1
    book = _book(
        n_symbols=4,
        position_weight=0.25,
        grid={"max_position": [0.25, 1.0, 0.1], "max_gross": [1.0, 3.0, 0.5]},
    )
    # ids: max_position x max_gross; max_position 1.0 acts as 0.25; max_gross 1.0 sits at the
    # bound (rounding of the sum may bind it): kept apart from 3.0; with max_position 0.1 the
    # gross is at most 0.4, so no max_gross binds
    np.testing.assert_array_equal(effective_groups(book), [0, 1, 2, 0, 1, 2, 6, 6, 6])
    grid = {"max_position": [0, 0, 0], "max_gross": [0, 0, 0]}
    note = duplicate_note(book, grid)
    assert note.startswith("5 of 9") and "max_position at or above position_weight" in note
    assert "max_gross at or above" in note
    # a band at or above the largest weight never trades: all alike, whatever else differs
    grid = {"rebalance_band": [0.3, 0.5], "stop_loss": [None, 0.05], "allow_short": [0, 1]}
    flat = _book(n_symbols=4, grid=grid)
    np.testing.assert_array_equal(effective_groups(flat), np.zeros(8))
    assert "can never trade" in duplicate_note(flat, grid)


def test_distinct_grids_have_no_note_and_strategy_mixes_compare_by_weight():
    book = _book(grid={"stop_loss": [None, 0.05], "allow_short": [False, True]})
    np.testing.assert_array_equal(effective_groups(book), [0, 1, 2, 3])
    assert duplicate_note(book, {"stop_loss": [0, 0], "allow_short": [0, 0]}) is None
    mixes = _book(grid={"strategy": ["trend", {"trend": 1.0}, {"trend": 0.5, "mine": 0.5}]})
    np.testing.assert_array_equal(effective_groups(mixes), [0, 0, 2])
    assert "same weights" in duplicate_note(mixes, {"strategy": [0, 0, 0]})


def test_run_groups_recomputes_from_a_manifest():
    cfg = {
        "portfolios": {"grid": {"sizing": ["fixed"], "target_vol": [0.1, 0.2]}},
        "execution": {},
    }
    np.testing.assert_array_equal(run_groups({"config": cfg}, ["trend"], 3, 2), [0, 0])
    assert run_groups({"config": cfg}, ["trend"], 3, 5) is None  # another run's grid
    assert run_groups({"config": {"portfolios": {"bogus": 1}}}, ["trend"], 3, 1) is None


def test_exit_keys_are_packed_and_compared():
    grid = {
        "exit_on": ["close", "intrabar"],
        "max_positions": [None, 2, 4],
        "take_profit": [None, 0.1],
    }
    book = _book(n_symbols=4, max_holding=5, trailing_stop=0.05, grid=grid)
    fp, ip = book.fparams(), book.iparams()
    assert book.intrabar and book.n_portfolios == 12
    np.testing.assert_array_equal(ip[:, K.I_INTRABAR], [0] * 6 + [1] * 6)
    np.testing.assert_array_equal(ip[:6, K.I_MAX_POSITIONS], [0, 0, 2, 2, 4, 4])
    assert np.all(ip[:, K.I_MAX_HOLDING] == 5) and np.all(fp[:, K.F_TRAILING_STOP] == 0.05)
    np.testing.assert_array_equal(fp[:2, K.F_TAKE_PROFIT], [np.nan, 0.1])
    # max_positions at or above the number of symbols is no limit; exit_on matters (trailing)
    groups = effective_groups(book)
    np.testing.assert_array_equal(groups[:6], [0, 1, 2, 3, 0, 1])
    assert "max_positions at or above" in duplicate_note(book, grid)
    # without stop_loss, trailing_stop and take_profit, intrabar tests nothing new
    plain = _book(n_symbols=4, grid={"exit_on": ["close", "intrabar"], "max_holding": [None, 3]})
    np.testing.assert_array_equal(effective_groups(plain), [0, 1, 0, 1])
    assert "exit_on has no effect" in duplicate_note(
        plain, {"exit_on": [0, 0], "max_holding": [0, 0]}
    )
    assert not _book().intrabar and np.all(_book().iparams()[:, K.I_MAX_POSITIONS] == 0)
