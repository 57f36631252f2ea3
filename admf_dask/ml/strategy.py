"""The ML strategy kinds and their registration (re-exported by `admf_dask.ml`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from admf_dask.kinds import STRATEGIES, StrategyContext, register_strategy
from admf_dask.ml.models import KINDS, PARAMS, FoldModel, ModelBundle, default_params
from admf_dask.ml.placement import ml_resources
from admf_dask.ml.registry import list_models, load_model, model_id, save_model
from admf_dask.ml.spec import SPECS, allowed_keys, param_schema, validate_ml_spec
from admf_dask.ml.trace import read_trace_jsonl, write_trace_jsonl
from admf_dask.ml.walkforward import Fold, no_fold_text, run_ml_strategy, walk_forward_folds


def _strategy(kind: str):
    def strategy(
        data, features, spec: dict[str, Any], ctx: StrategyContext, name: str | None = None
    ):
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


def ml_worker_salt(client: Any) -> dict[str, Any]:
    """What ML signals depend on beyond their specs: the ML workers' threads and devices."""
    from admf_dask.ml.placement import ML, cluster_workers

    ml = sorted(
        (int(w.get("nthreads") or 1), sorted((w.get("resources") or {}).items()))
        for w in cluster_workers(client).values()
        if float((w.get("resources") or {}).get(ML, 0)) >= 1
    )
    return {"ml_workers": ml}


def explain_zero(
    name: str, spec: Mapping[str, Any], ctx: StrategyContext, n_bars: int
) -> tuple[str, str]:
    """Why an ML strategy is 0: no fold at all, no fold that trained, or 0 predictions.

    The walk-forward warns as it runs; the signal check (`admf_dask.strategies.diagnose`) gives
    the same line, so that a run whose signals come from the session cache says it too.

    Returns
    -------
    (str, str)
        The text and the fix.
    """
    fix = "lower train_window or load more history"
    train_window = int(spec["train_window"])
    if n_bars <= train_window:  # no fold at all (walk_forward_folds is empty)
        return f"strategies.{name}: {no_fold_text(train_window, n_bars)}", fix
    folds = (getattr(ctx, "quality", None) or {}).get(name)
    if folds and not any(f.get("status") == "ok" for f in folds):
        text = f"strategy '{name}' has no non-zero signal: none of its {len(folds)} folds trained"
        return text, fix
    return f"strategy '{name}' has no non-zero signal: its models predicted 0 at every bar", fix


def register_ml_kinds(replace: bool = False) -> list[str]:
    """Register ``xgboost``, ``mlp`` and ``lstm`` in the strategy-kind registry.

    Called by `admf_dask.kinds.register_builtin_kinds` (on the registry's first look-up). Each
    kind brings its key model (`SPECS`) and validator (`validate_ml_spec`: defaults, types,
    purge >= horizon, feature names); its function takes the strategy ``name``; its signals
    depend on the ML workers' layout too (`ml_worker_salt`).

    Returns
    -------
    list of str
        The kinds registered by this call (already registered kinds are left alone unless
        `replace`).
    """
    done = []
    for kind, (func, _schema) in ML_KINDS.items():
        if kind in STRATEGIES._kinds and not replace:
            continue
        register_strategy(
            kind,
            params=SPECS[kind],
            validate=validate_ml_spec,
            cache_salt=ml_worker_salt,
            explain_zero=explain_zero,
            replace=True,
        )(func)
        done.append(kind)
    return done


__all__ = [  # re-exported by admf_dask.ml
    "KINDS",
    "ML_KINDS",
    "PARAMS",
    "SPECS",
    "Fold",
    "FoldModel",
    "ModelBundle",
    "allowed_keys",
    "default_params",
    "explain_zero",
    "list_models",
    "load_model",
    "lstm_strategy",
    "ml_resources",
    "ml_worker_salt",
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
