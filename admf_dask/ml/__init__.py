"""ML strategies: walk-forward XGBoost, MLP and LSTM models on resource-tagged workers.

Strategy kinds ``xgboost``, ``mlp`` and ``lstm`` (README, pipeline file) are functions
``(data, features, spec, ctx) -> xr.DataArray (time, symbol)`` in [-1, 1]. Each fold trains one
model pooled over symbols on ``ML``-tagged workers (`placement`), predicts its next
``retrain_every`` bars there, saves the model in ``ctx.run_dir/models`` (`registry`, safe formats
only), appends one trace record per train/inference task to ``ctx.trace`` (`trace`) and one IC
table row per fold to ``ctx.quality[name]``.

`register_ml_kinds` puts them in the strategy-kind registry (`admf_dask.kinds`), which calls it
on its first look-up; this package does not import `admf_dask.strategies`.
"""

import importlib
from typing import Any

# imported on first use, so that `import admf_dask.ml._kernels` (on a worker) loads only numpy
_WHERE = {
    "KINDS": "admf_dask.ml.models",
    "ML_KINDS": "admf_dask.ml.strategy",
    "PARAMS": "admf_dask.ml.models",
    "SPECS": "admf_dask.ml.spec",
    "Fold": "admf_dask.ml.walkforward",
    "FoldModel": "admf_dask.ml.models",
    "ModelBundle": "admf_dask.ml.models",
    "allowed_keys": "admf_dask.ml.spec",
    "default_params": "admf_dask.ml.models",
    "explain_zero": "admf_dask.ml.strategy",
    "list_models": "admf_dask.ml.registry",
    "load_model": "admf_dask.ml.registry",
    "lstm_strategy": "admf_dask.ml.strategy",
    "ml_resources": "admf_dask.ml.placement",
    "ml_worker_salt": "admf_dask.ml.strategy",
    "mlp_strategy": "admf_dask.ml.strategy",
    "model_id": "admf_dask.ml.registry",
    "param_schema": "admf_dask.ml.spec",
    "read_trace_jsonl": "admf_dask.ml.trace",
    "register_ml_kinds": "admf_dask.ml.strategy",
    "run_ml_strategy": "admf_dask.ml.walkforward",
    "save_model": "admf_dask.ml.registry",
    "validate_ml_spec": "admf_dask.ml.spec",
    "walk_forward_folds": "admf_dask.ml.walkforward",
    "write_trace_jsonl": "admf_dask.ml.trace",
    "xgboost_strategy": "admf_dask.ml.strategy",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = sorted(_WHERE)
