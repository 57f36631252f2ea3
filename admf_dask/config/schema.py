"""The JSON schema of the pipeline file, for editors and the docs (``admf-dask schema``).

Made from the pydantic models of the sections (`admf_dask.config.models`) and, for
``features:`` and ``strategies:``, from the registries: each is a mapping of name -> spec whose
``kind`` picks the kind's parameter model (a ``oneOf`` discriminated by ``kind``), so an editor
completes and checks the parameters of each kind. The loader stays the reference: it also checks
what a schema cannot say (feature references, purge >= horizon, date texts).
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from admf_dask.config.models import PipelineConfig
from admf_dask.errors import InputError

#: the ``$schema`` dialect of `pipeline_schema`
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _with_kind(prefix: str, kind: str, model: type[BaseModel], doc: str) -> type[BaseModel]:
    """`model` plus its ``kind`` key (and, for features, ``input``), named ``<prefix>_<kind>``."""
    extra: dict[str, Any] = {}
    if prefix == "feature":  # every indicator takes input (admf_dask.features.registry)
        extra["input"] = (
            str | None,
            Field(
                None,
                description="a feature variable or data field read in place of the close",
            ),
        )
    return create_model(  # type: ignore[call-overload]
        f"{prefix}_{kind}",
        __base__=model,
        __doc__=doc or f"{prefix} kind {kind}",
        kind=(Literal[kind], Field(description=f"the {prefix} kind")),
        **extra,
    )


def _doc(func: Any) -> str:
    """The first paragraph of a kind function's docstring, on one line."""
    text = inspect.cleandoc(getattr(func, "__doc__", None) or "")
    return " ".join(text.split("\n\n")[0].split())


def _union(prefix: str, kinds: Mapping[str, Any]) -> Any:
    models = [_with_kind(prefix, k, v.params, _doc(v.func)) for k, v in sorted(kinds.items())]
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007


def pipeline_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a pipeline file.

    Returns
    -------
    dict
        JSON-able schema: the sections, their keys with descriptions, defaults and bounds, and
        per-kind parameters of features and strategies (every registered kind, ML kinds too).
    """
    from admf_dask.features import INDICATORS
    from admf_dask.kinds import STRATEGIES, register_builtin_kinds

    register_builtin_kinds()
    file_model = create_model(  # type: ignore[call-overload]
        "PipelineFile",
        __base__=PipelineConfig,
        __doc__="An admf-dask pipeline file (YAML): data, features, strategies, portfolios.",
        features=(
            dict[str, _union("feature", INDICATORS)],
            Field(default_factory=dict, description="feature name -> {kind, params}"),
        ),
        strategies=(
            dict[str, _union("strategy", dict(STRATEGIES.items()))],
            Field(default_factory=dict, description="strategy name -> {kind, params}"),
        ),
    )
    schema = file_model.model_json_schema()
    schema["properties"].pop("base_dir", None)  # set by the loader, not a key of the file
    return {"$schema": DIALECT, **schema}


def write_schema(out: str | Path | None = None) -> None:
    """Write `pipeline_schema` as JSON (indent 2) to stdout, or to file `out`.

    Raises
    ------
    InputError
        `out` cannot be written (its folder is missing, it is a folder, ...).
    """
    text = json.dumps(pipeline_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    path = Path(out)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"--out {out}", f"cannot write the schema ({exc.strerror or exc})", "pass a file path"
        ) from None
    print(f"schema: {path}")
