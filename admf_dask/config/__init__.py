"""The pipeline file: YAML (safe_load only) → validated `PipelineConfig`.

Every problem becomes one `ConfigError` line naming the key path (``portfolios.grid.stop_loss``)
or the file and line, with a fix (a did-you-mean for unknown keys): pydantic's errors go through
the one translator, `admf_dask.params.to_config_error`, as the kinds' parameter errors do.
`pipeline_schema` is the JSON schema of the file (``admf-dask schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from admf_dask.config.models import (
    GRID_KEYS,
    PARAM_KEYS,
    ChunksConfig,
    ClusterConfig,
    DataConfig,
    ExecutionConfig,
    OutputConfig,
    PipelineConfig,
    PortfolioParams,
    PortfoliosConfig,
)
from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.params import to_config_error

__all__ = [
    "GRID_KEYS",
    "PARAM_KEYS",
    "ChunksConfig",
    "ClusterConfig",
    "DataConfig",
    "ExecutionConfig",
    "OutputConfig",
    "PipelineConfig",
    "PortfolioParams",
    "PortfoliosConfig",
    "apply_overrides",
    "config_hash",
    "load_pipeline",
    "pipeline_schema",
    "read_yaml",
]


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` whose impossible unquoted dates (``2010-13-01``) stay text.

    PyYAML raises a bare ValueError for them; as text the config check reports them as one line
    naming their key (``data.start: '2010-13-01' is not a date``).
    """

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only, no tags


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a pipeline file with `yaml.safe_load`; errors name the file and line."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(str(p), "pipeline file not found", "check the path")
    if p.is_dir():
        raise ConfigError(str(p), "is a folder, not a pipeline file", "pass the .yaml file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), f"cannot read the file ({exc})", "save it as UTF-8 text") from exc
    try:
        raw = _safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(
            f"{p} line {line}",
            f"YAML tag not allowed ({exc.problem})",
            "pipeline files are plain data: remove the '!!' tag",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p} line {mark.line + 1} column {mark.column + 1}" if mark else str(p)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(where, f"YAML syntax error: {problem}", "fix the YAML syntax") from None
    if raw is None:
        raise ConfigError(str(p), "the pipeline file is empty", "see pipelines/quickstart.yaml")
    if not isinstance(raw, dict):
        raise ConfigError(
            str(p),
            f"top level must be a mapping of sections, got {type(raw).__name__}",
            "start with keys such as name:, data:, portfolios:",
        )
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML scalars/lists) to a copy."""
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError("--set", f"'{item}' has no '='", "write --set key.path=value")
        path, _, value_text = item.partition("=")
        keys = [k.strip() for k in path.strip().split(".")]
        if not keys or any(not k for k in keys):
            raise ConfigError("--set", f"bad key path '{path}'", "write --set data.bars=1000")
        try:
            value = _safe_load(value_text) if value_text.strip() else None
        except yaml.YAMLError:
            raise ConfigError(
                f"--set {path}", f"cannot read value '{value_text}'", "quote it or fix its syntax"
            ) from None
        node = out
        for i, key in enumerate(keys[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                where = ".".join(keys[: i + 1])
                raise ConfigError(f"--set {path}", f"'{where}' is not a section", "set it directly")
            node = nxt
        node[keys[-1]] = value
    return out


def pipeline_schema() -> dict[str, Any]:
    """The JSON schema of a pipeline file (see `admf_dask.config.schema`)."""
    from admf_dask.config.schema import pipeline_schema as _schema

    return _schema()


def load_pipeline(
    source: str | Path | Mapping[str, Any] | PipelineConfig,
    overrides: Iterable[str] = (),
    *,
    stages: bool = True,
) -> PipelineConfig:
    """Load and validate a pipeline.

    Parameters
    ----------
    source : path, dict or PipelineConfig
        A YAML pipeline file (relative data/signal paths in it resolve against its folder), a dict
        of the same shape, or an already validated config (returned with overrides applied).
    overrides : iterable of str
        ``key.path=value`` items, as the CLI's ``--set``.
    stages : bool
        Also check the feature and strategy specs with their registries (which import the
        stages: numba, dask.array); False checks the file's shape and values only (the CLI, before
        it starts anything).

    Returns
    -------
    PipelineConfig
        The validated config; raises `ConfigError` (one line) for anything wrong.
    """
    base_dir: str | None = None
    if isinstance(source, PipelineConfig):
        base_dir = source.base_dir
        raw = source.model_dump(mode="json", exclude={"base_dir"})
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raw = read_yaml(source)
        base_dir = str(Path(source).resolve().parent)
    raw = apply_overrides(raw, overrides)
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise to_config_error(exc, raw, PipelineConfig) from None
    cfg.base_dir = base_dir
    if stages:
        _validate_stages(cfg)
    return cfg


def _validate_stages(cfg: PipelineConfig) -> None:
    """Check feature/strategy specs with their registries, and cross-references."""
    from admf_dask.features import validate_feature_spec, validate_feature_specs
    from admf_dask.kinds import register_builtin_kinds
    from admf_dask.strategies import validate_strategy_spec

    register_builtin_kinds()  # the traditional and the ML strategy kinds

    feats = {}
    for name, spec in cfg.features.items():
        if not isinstance(spec, dict):
            raise ConfigError(
                f"features.{name}", "must be a mapping with a kind", "e.g. {kind: sma, window: 10}"
            )
        feats[name] = validate_feature_spec(name, spec)
    cfg.features = validate_feature_specs(feats)
    strats = {}
    for name, spec in cfg.strategies.items():
        if not isinstance(spec, dict):
            raise ConfigError(
                f"strategies.{name}",
                "must be a mapping with a kind",
                "e.g. {kind: ma_crossover, fast: sma_10, slow: sma_50}",
            )
        strats[name] = validate_strategy_spec(name, spec, feats)
    cfg.strategies = strats
    if not strats:
        raise ConfigError(
            "strategies", "no strategies defined", "add at least one under strategies:"
        )
    _check_strategy_refs(cfg)
    p = cfg.portfolios
    vol_features = p.grid.get("vol_feature", [p.vol_feature])
    sizings = p.grid.get("sizing", [p.sizing])
    for vf in vol_features:
        if vf is not None and vf not in _feature_outputs(feats):
            raise ConfigError(
                "portfolios.vol_feature",
                f"unknown feature '{vf}'{did_you_mean(str(vf), _feature_outputs(feats))}",
                "name a feature defined under features: (e.g. a volatility feature)",
            )
    if "vol_target" in sizings and all(vf is None for vf in vol_features):
        raise ConfigError(
            "portfolios.vol_feature",
            "sizing vol_target needs a volatility feature",
            "add e.g. features: {vol_20: {kind: volatility, window: 20}} and portfolios.vol_feature: vol_20",
        )


def _feature_outputs(feats: dict[str, dict[str, Any]]) -> list[str]:
    from admf_dask.features import feature_variables

    return list(feature_variables(feats))


def _check_strategy_refs(cfg: PipelineConfig) -> None:
    names = list(cfg.strategies)
    mixes = cfg.portfolios.grid.get("strategy")
    if mixes is None:
        mixes = [] if cfg.portfolios.strategy is None else [cfg.portfolios.strategy]
        where = "portfolios.strategy"
    else:
        where = "portfolios.grid.strategy"
    for mix in mixes:
        if isinstance(mix, str):
            refs = [mix]
        elif isinstance(mix, dict) and mix:
            refs = list(mix)
            for k, w in mix.items():
                if not isinstance(w, int | float) or isinstance(w, bool):
                    raise ConfigError(
                        where, f"weight of '{k}' must be a number, got {w!r}", "write {trend: 0.5}"
                    )
        else:
            raise ConfigError(
                where, f"bad strategy entry {mix!r}", "use a strategy name or {name: weight}"
            )
        for r in refs:
            if r not in names:
                raise ConfigError(
                    where,
                    f"unknown strategy '{r}'{did_you_mean(r, names)}",
                    "strategies defined: " + ", ".join(names),
                )


def config_hash(cfg: PipelineConfig) -> str:
    """16 hex digits identifying the resolved config (`admf_dask.dasktools.ids.identity`).

    The ``cache:`` section is left out: where and how much is cached never changes results.
    """
    from admf_dask.dasktools.ids import identity

    return identity("config", cfg.model_dump(mode="json", exclude={"cache"}), length=16)
