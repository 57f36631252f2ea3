"""`config_hash`: short, stable, blind to the ``cache:`` section only."""

from __future__ import annotations

from admf_dask.config import config_hash, load_pipeline


def test_cache_section_does_not_change_the_hash(small_pipeline):
    a = config_hash(load_pipeline(small_pipeline))
    assert len(a) == 16 and int(a, 16) >= 0
    off = config_hash(load_pipeline(small_pipeline, ["cache.enabled=false"]))
    other_dir = config_hash(load_pipeline(small_pipeline, ["cache.dir=/tmp/elsewhere"]))
    assert a == off == other_dir


def test_result_changing_keys_change_the_hash(small_pipeline):
    a = config_hash(load_pipeline(small_pipeline))
    for override in ("data.seed=4", "portfolios.capital=5000", "features.sma_5.window=6"):
        assert config_hash(load_pipeline(small_pipeline, [override])) != a, override
