"""ML strategies: walk-forward XGBoost, MLP and LSTM models on resource-tagged workers.

Strategy kinds ``xgboost``, ``mlp`` and ``lstm`` (DESIGN §5) are functions
``(data, features, spec, ctx) -> xr.DataArray (time, symbol)`` in [-1, 1]. Each fold trains one
model pooled over symbols on ``ML``-tagged workers (`placement`), predicts its next
``retrain_every`` bars there, saves the model in ``ctx.run_dir/models`` (`registry`, safe formats
only), appends one trace record per train/inference task to ``ctx.trace`` (`trace`) and one IC
table row per fold to ``ctx.quality[name]``.
"""

from __future__ import annotations

from typing import Any

from admf_dask.ml.models import KINDS, PARAMS, FoldModel, ModelBundle, default_params
from admf_dask.ml.placement import ml_resources
from admf_dask.ml.registry import list_models, load_model, model_id, save_model
from admf_dask.ml.spec import allowed_keys, param_schema, validate_ml_spec
from admf_dask.ml.trace import read_trace_jsonl, write_trace_jsonl
from admf_dask.ml.walkforward import Fold, run_ml_strategy, walk_forward_folds


def _strategy(kind: str):
    def strategy(data, features, spec: dict[str, Any], ctx, name: str | None = None):
        return run_ml_strategy(data, features, {**spec, "kind": kind}, ctx, name=name)

    strategy.__name__ = f"{kind}_strategy"
    strategy.__qualname__ = strategy.__name__
    strategy.__doc__ = (
        f"Walk-forward {kind} strategy: see `admf_dask.ml.run_ml_strategy` for the contract."
    )
    return strategy


xgboost_strategy = _strategy("xgboost")
mlp_strategy = _strategy("mlp")
lstm_strategy = _strategy("lstm")

#: kind -> (strategy function, JSON-able key/parameter schema)
ML_KINDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "xgboost": (xgboost_strategy, param_schema("xgboost")),
    "mlp": (mlp_strategy, param_schema("mlp")),
    "lstm": (lstm_strategy, param_schema("lstm")),
}


def register_ml_kinds(replace: bool = False) -> list[str]:
    """Register ``xgboost``, ``mlp`` and ``lstm`` in `admf_dask.strategies`' registry.

    Runs on import of this package. Each kind brings its own validator (`validate_ml_spec`:
    defaults, types, purge >= horizon, feature names); its function takes the strategy ``name``.

    Returns
    -------
    list of str
        The kinds registered by this call (already registered kinds are left alone unless
        `replace`).
    """
    from admf_dask.strategies.registry import STRATEGIES, register_strategy

    done = []
    for kind, (func, _schema) in ML_KINDS.items():
        if kind in STRATEGIES and not replace:
            continue
        register_strategy(kind, validate=validate_ml_spec, replace=True)(func)
        done.append(kind)
    return done


try:
    register_ml_kinds()
except ImportError:  # pragma: no cover - the strategies stage is not installed
    pass

__all__ = [
    "KINDS",
    "ML_KINDS",
    "PARAMS",
    "Fold",
    "FoldModel",
    "ModelBundle",
    "allowed_keys",
    "default_params",
    "list_models",
    "load_model",
    "lstm_strategy",
    "ml_resources",
    "mlp_strategy",
    "model_id",
    "param_schema",
    "read_trace_jsonl",
    "register_ml_kinds",
    "run_ml_strategy",
    "save_model",
    "validate_ml_spec",
    "walk_forward_folds",
    "write_trace_jsonl",
    "xgboost_strategy",
]
