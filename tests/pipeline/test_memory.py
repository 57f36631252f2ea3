"""The memory guard shrinks the batch or refuses before a run is killed."""

from __future__ import annotations

import pytest

from admf_dask.errors import ConfigError
from admf_dask.pipeline.memory import plan_memory, task_bytes

GiB = 2**30
SHAPE = dict(
    n_bars=2520,
    n_symbols=100,
    n_features=4,
    n_strategies=2,
    n_portfolios=10_000,
    tchunk=504,
    record_orders=True,
)


def test_fits_unchanged_on_a_big_worker():
    plan = plan_memory(batch_size=500, worker_memory=[11 * GiB, 11 * GiB], **SHAPE)
    assert plan.batch_size == 500 and not plan.shrunk
    assert plan.task_bytes == task_bytes(500, 100, 504, 2, True)


def test_shrinks_batch_on_a_small_worker():
    plan = plan_memory(batch_size=500, worker_memory=[1 * GiB, 1 * GiB], **SHAPE)
    assert plan.shrunk and plan.batch_size < 500
    assert plan.task_bytes <= 0.6 * GiB


def test_no_orders_needs_less():
    assert task_bytes(500, 100, 504, 2, False) < task_bytes(500, 100, 504, 2, True) / 10


def test_refuses_data_that_cannot_fit():
    with pytest.raises(ConfigError, match="select fewer symbols"):
        plan_memory(batch_size=500, worker_memory=[GiB // 8], **{**SHAPE, "n_symbols": 5000})


def test_refuses_a_task_that_cannot_fit_even_at_batch_one():
    with pytest.raises(ConfigError, match="data.chunks.time"):
        plan_memory(
            batch_size=500,
            worker_memory=[256 * 2**20],
            **{**SHAPE, "n_bars": 600, "n_symbols": 2000, "tchunk": 600},
        )


def test_unknown_limits_do_not_guard():
    plan = plan_memory(batch_size=500, worker_memory=[0], **SHAPE)
    assert plan.batch_size == 500
