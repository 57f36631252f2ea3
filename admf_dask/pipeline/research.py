"""The research statistics (docs/RESEARCH.md) inside a run, and recomputed on a finished run folder.

`research` (``ad.research``, ``admf-dask research RUN_DIR``) reads the run's equity, computes
psr / dsr, PBO and the walk-forward selection with the run's ``research:`` section (plus
``research.key=value`` overrides), and updates the folder in place without re-simulating:
``psr``, ``dsr`` and ``wfo_equity`` in results.zarr, research.json, run.json (config, timings,
outputs) and report.html. Every check runs before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from admf_dask.dasktools.fs import Loc
from admf_dask.errors import ConfigError, InputError

__all__ = ["research", "research_fits", "research_step", "summary_text"]


def research_fits(cfg: Any, n_bars: int) -> bool:
    """Whether the run's ``research:`` section can run on ``n_bars`` bars.

    Settings the user gave that the data cannot meet are a `ConfigError` (before the run
    computes anything); the untouched defaults (16 blocks) on a run shorter than that only
    switch the statistics off.
    """
    from admf_dask.research.config import check_research

    if cfg.enabled is False:
        return False
    if not cfg.model_fields_set and cfg.cscv_blocks > n_bars:
        return False
    check_research(cfg, n_bars)
    return True


def research_step(run_dir: Path, cfg: Any, results: Path | Loc | None = None) -> str:
    """Compute and write the statistics into a run folder; a one-line note for the reporter.

    `results`: the run's results.zarr when it is not in `run_dir` (a run to a store: under the
    temporary prefix the workers write into).
    """
    from admf_dask.research.stage import research_stage
    from admf_dask.research.write import write_research

    results = Path(run_dir) / "results.zarr" if results is None else results
    res = research_stage(results, cfg)
    write_research(run_dir, res, results=results)
    return _note(res)


def _note(res) -> str:
    s = res.summary
    pbo = s["pbo"]
    text = f"pbo {pbo['pbo']:.2f} over {pbo['combinations']:,} splits"
    best = s["best"]
    text += f"; best portfolio {best['portfolio']} dsr {_num(best['dsr'])}"
    wf = s.get("walk_forward")
    if wf:
        text += (
            f"; walk-forward {len(wf['windows'])} windows, sharpe {_num(wf['metrics']['sharpe'])}"
        )
    return text


def summary_text(res, run_dir: str | Path) -> str:
    """A few lines for the CLI: PBO, the best portfolio's psr/dsr, the walk-forward path."""
    s = res.summary
    pbo, best, d = s["pbo"], s["best"], s["dsr"]
    lines = [
        f"pbo {pbo['pbo']:.3f} ({pbo['combinations']:,} splits of {pbo['cscv_blocks']} blocks); "
        f"median logit {_num(pbo['median_logit'])}; P(OOS loss) {pbo['prob_oos_loss']:.3f}",
        f"best portfolio {best['portfolio']}: sharpe per bar {_num(best['sharpe'])}, "
        f"psr {_num(best['psr'])}, dsr {_num(best['dsr'])} "
        f"(SR0 {_num(d['sr0'])} over {d['n']:,} portfolios)",
    ]
    wf = s.get("walk_forward")
    if wf:
        m = wf["metrics"]
        lines.append(
            f"walk-forward: {len(wf['windows'])} windows (train {wf['train']}, test {wf['test']}"
            f"{', anchored' if wf['anchored'] else ''}), sharpe {_num(m['sharpe'])}, "
            f"total return {_num(m['total_return'])}"
        )
    lines.append(f"research: {Path(run_dir) / 'research.json'}")
    return "\n".join(lines)


def _num(x: Any) -> str:
    return "nan" if x is None or x != x else f"{x:.3f}"


def research(
    run_or_dir: Any,
    overrides: Iterable[str] = (),
    *,
    client: Any = None,
    report: bool | None = None,
):
    """Recompute the research statistics of a finished run, in place.

    Parameters
    ----------
    run_or_dir : RunResult, str or Path
        The run (``ad.run``'s result, ``ad.open_run``'s) or its folder.
    overrides : iterable of str
        ``research.key=value`` items (as ``--set``), e.g. ``research.cscv_blocks=8`` or
        ``research.walk_forward={train: 504, test: 63}``.
    client : distributed.Client, optional
        Compute on it; default: dask's current scheduler (threads in a plain process).
    report : bool, optional
        Rebuild report.html (default: when the run wrote one or ``output.report`` is on).

    Returns
    -------
    ResearchResult
        ``psr``, ``dsr``, ``sharpe`` (P,), ``summary`` (research.json), ``wfo_equity``.
    """
    import contextlib

    from admf_dask.pipeline import interrupt, rundir
    from admf_dask.pipeline.manifest import read_manifest, write_manifest
    from admf_dask.research.stage import research_stage
    from admf_dask.research.write import write_research

    folder = Path(getattr(run_or_dir, "path", run_or_dir)).expanduser()
    if not folder.exists():
        raise InputError(str(folder), "no such folder", "pass the folder an admf-dask run wrote")
    problem = rundir.run_folder_problem(folder)
    if problem is not None and problem.startswith("it holds files") and _remove_leftovers(folder):
        problem = rundir.run_folder_problem(folder)  # a run folder of ours, with leftovers
    if problem is not None:
        raise InputError(
            str(folder), f"not a run folder ({problem})", "pass the folder an admf-dask run wrote"
        )
    if not (folder / "results.zarr" / "equity").is_dir():
        raise InputError(
            str(folder),
            "the run was written without equity (no results.zarr/equity)",
            "run the pipeline again; research needs the equity of every portfolio",
        )
    manifest = read_manifest(folder / "run.json")
    cfg = _research_config(manifest, overrides)
    t0 = time.perf_counter()
    with client.as_current() if client is not None else contextlib.nullcontext():
        res = research_stage(folder / "results.zarr", cfg)  # checks cfg against the bars first
    # an interrupt (the CLI's Ctrl-C) before this point leaves the folder as it was, and one
    # during the writes waits for them
    with interrupt.commit_guard():
        written = write_research(folder, res)
        manifest.setdefault("config", {})["research"] = cfg.model_dump(mode="json")
        manifest.setdefault("timings", {})["research"] = round(time.perf_counter() - t0, 4)
        listed = manifest.get("outputs")
        present = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        base = set(listed) if isinstance(listed, list) else present
        manifest["outputs"] = sorted(base | set(written) | {"run.json"})
        write_manifest(folder / "run.json", manifest)  # atomic
    if report is None:
        out_cfg = manifest.get("config", {}).get("output", {})
        report = (folder / "report.html").exists() or bool(out_cfg.get("report", False))
    if report:
        from admf_dask.report import build_report

        build_report(folder)
    return res


def _remove_leftovers(folder: Path) -> bool:
    """Remove the temporary files of an earlier research write that was killed (they make the
    folder look like one holding files the run did not write); True if there were any."""
    import shutil

    found = False
    for pattern in (".results.zarr.research-*", ".research.json.tmp-*", ".run.json.tmp-*"):
        for p in folder.glob(pattern):
            found = True
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    return found


def _research_config(manifest: dict[str, Any], overrides: Iterable[str]):
    """The run's ``research:`` section with ``research.*`` overrides, validated."""
    from pydantic import ValidationError

    from admf_dask.config import apply_overrides
    from admf_dask.research.config import ResearchConfig

    overrides = list(overrides)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not key.startswith("research."):
            raise ConfigError(
                f"--set {key}",
                "only research.* keys can change on a finished run",
                "re-run the pipeline to change anything else",
            )
    raw = apply_overrides({"research": manifest.get("config", {}).get("research") or {}}, overrides)
    try:
        return ResearchConfig.model_validate(raw["research"] or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(["research", *(str(p) for p in err["loc"])])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(ResearchConfig.model_fields)
            raise ConfigError(
                where, f"unknown key '{err['loc'][-1]}'", f"allowed keys: {allowed}"
            ) from None
        raise ConfigError(where, msg, "see the research section in README.md") from None
