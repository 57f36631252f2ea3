"""Pipeline file loading: every mistake is one ConfigError line naming the key and a fix."""

from __future__ import annotations

import pytest
import yaml

from admf_dask.config import apply_overrides, config_hash, load_pipeline, read_yaml
from admf_dask.errors import ConfigError


def _write(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_quickstart_is_valid():
    cfg = load_pipeline("pipelines/quickstart.yaml")
    assert cfg.name == "quickstart"
    assert cfg.data.chunks.time == 504
    assert cfg.base_dir.endswith("pipelines")
    assert len(config_hash(cfg)) == 16


def test_hash_is_deterministic_and_sensitive(small_pipeline):
    a = config_hash(load_pipeline(small_pipeline))
    assert a == config_hash(load_pipeline(small_pipeline))
    assert a != config_hash(load_pipeline(small_pipeline, ["data.seed=4"]))


@pytest.mark.parametrize(
    "mutate, where, text",
    [
        (lambda d: d.update(portfolio={}), "portfolio", "did you mean 'portfolios'"),
        (lambda d: d["data"].update(symbol=3), "data.symbol", "did you mean 'symbols'"),
        (lambda d: d["data"].update(bars="ten"), "data.bars", "'ten'"),
        (lambda d: d["data"].update(source="csvv"), "data.source", "'synthetic'"),
        (lambda d: d["data"].update(source="csv"), "data", "needs a path"),
        (lambda d: d["data"].update(chunks={"time": 0}), "data.chunks.time", "positive"),
        (lambda d: d["data"].update(chunks={"time": -5}), "data.chunks.time", "positive"),
        (lambda d: d["portfolios"].update(stop_loss=1.5), "portfolios.stop_loss", "1.5"),
        (lambda d: d["portfolios"].update(capital=-1), "portfolios.capital", "greater than 0"),
        (
            lambda d: d["portfolios"]["grid"].update(stoploss=[0.1]),
            "portfolios.grid",
            "did you mean 'stop_loss'",
        ),
        (
            lambda d: d["portfolios"]["grid"].update(stop_loss=[2.0]),
            "portfolios.grid",
            "less than 1",
        ),
        (
            lambda d: d["portfolios"]["grid"].update(stop_loss=[]),
            "portfolios.grid",
            "non-empty list",
        ),
        (
            lambda d: d["portfolios"]["grid"].update(strategy=["trnd"]),
            "portfolios.grid.strategy",
            "did you mean 'trend'",
        ),
        (
            lambda d: d["portfolios"].update(strategy={"trend": "half"}),
            "portfolios.strategy",
            "must be a number",
        ),
        (
            lambda d: d["portfolios"].update(sizing="vol_target", vol_feature=None),
            "portfolios.vol_feature",
            "needs a volatility feature",
        ),
        (
            lambda d: d["portfolios"].update(vol_feature="vol_21"),
            "portfolios.vol_feature",
            "did you mean 'vol_20'",
        ),
        (lambda d: d["cluster"].update(n_workers=0), "cluster.n_workers", "at least 1"),
        (
            lambda d: d["cluster"].update(ml_workers=-1),
            "cluster.ml_workers",
            "greater than or equal to 0",
        ),
        (lambda d: d["output"].update(orderz=False), "output.orderz", "did you mean 'orders'"),
        (lambda d: d.update(strategies={}), "strategies", "no strategies"),
        (lambda d: d["features"].update(bad="sma"), "features.bad", "must be a mapping"),
    ],
)
def test_config_errors_name_key_and_fix(small_pipeline, mutate, where, text):
    mutate(small_pipeline)
    with pytest.raises(ConfigError) as err:
        load_pipeline(small_pipeline)
    line = err.value.line
    assert "\n" not in line
    assert line.startswith(where), line
    assert text in line, line


def test_yaml_syntax_error_names_line(tmp_path):
    p = _write(tmp_path, "name: x\ndata: {source: synthetic\nfeatures: {}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml line \d+ .*YAML syntax error"):
        read_yaml(p)


def test_unsafe_yaml_tag_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    p = _write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="YAML tag not allowed"):
        load_pipeline(p)
    assert not marker.exists()


@pytest.mark.parametrize("text, msg", [("", "empty"), ("- a\n- b\n", "mapping of sections")])
def test_empty_or_non_mapping_file(tmp_path, text, msg):
    with pytest.raises(ConfigError, match=msg):
        load_pipeline(_write(tmp_path, text))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_pipeline(tmp_path)


def test_set_overrides_parse_yaml_values(small_pipeline):
    cfg = load_pipeline(
        small_pipeline,
        [
            "data.bars=400",
            "portfolios.grid.stop_loss=[0.1, 0.2]",
            "output.orders=false",
            "portfolios.max_drawdown=null",
            "name=renamed",
        ],
    )
    assert cfg.data.bars == 400
    assert cfg.portfolios.grid["stop_loss"] == [0.1, 0.2]
    assert cfg.output.orders is False
    assert cfg.name == "renamed"


@pytest.mark.parametrize(
    "item, msg",
    [
        ("data.bars", "has no '='"),
        ("data..bars=3", "bad key path"),
        ("name.x=3", "not a section"),
        ("data.bars=[1, ", "cannot read value"),
    ],
)
def test_bad_set_overrides(small_pipeline, item, msg):
    with pytest.raises(ConfigError, match=msg):
        load_pipeline(small_pipeline, [item])


def test_set_unknown_key_is_an_error(small_pipeline):
    with pytest.raises(
        ConfigError, match=r"data\.barz: unknown key 'barz' \(did you mean 'bars'\?\)"
    ):
        load_pipeline(small_pipeline, ["data.barz=3"])


def test_apply_overrides_does_not_mutate():
    raw = {"data": {"bars": 1}}
    out = apply_overrides(raw, ["data.bars=2"])
    assert raw["data"]["bars"] == 1 and out["data"]["bars"] == 2


def test_relative_paths_resolve_against_pipeline_file(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    text = yaml.safe_dump(
        {
            "strategies": {"s": {"kind": "signals", "path": "sig.csv"}},
            "data": {"source": "synthetic", "symbols": 2, "bars": 10},
        }
    )
    cfg = load_pipeline(_write(sub, text))
    assert cfg.base_dir == str(sub.resolve())
