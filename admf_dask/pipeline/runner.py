"""Run a pipeline: plan the stages, execute them on the cluster, write the run folder.

The decision logic (config, grid, graph building) lives in the stages; this module only sequences
them, times them, and makes the output atomic.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from admf_dask.config import PipelineConfig, config_hash, load_pipeline
from admf_dask.dasktools.fs import Loc, direct_writes, is_url, probe, zarr_target
from admf_dask.dasktools.fs import resolve as resolve_loc
from admf_dask.data.calendar import bar_label
from admf_dask.pipeline import faults, interrupt, rundir
from admf_dask.pipeline.manifest import versions, write_manifest
from admf_dask.pipeline.results import RunResult, open_local_run, open_run, through_client

log = logging.getLogger("admf_dask")

STAGES = ("data", "features", "signals", "portfolio", "research", "write")


@runtime_checkable
class Reporter(Protocol):
    """What a run tells its user while it works (CLI: rich display; API: logging)."""

    def start(self, run_id: str, dashboard: str | None) -> None: ...
    def stage(self, name: str) -> contextlib.AbstractContextManager[Callable[[str], None]]: ...
    def warn(self, text: str) -> None: ...


class LogReporter:
    """Default reporter: the dashboard link printed, stage lines logged with the run id."""

    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.echo = echo
        self.run_id = ""

    def start(self, run_id: str, dashboard: str | None) -> None:
        self.run_id = run_id
        self.echo(f"admf-dask run {run_id}" + (f" — dashboard: {dashboard}" if dashboard else ""))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Callable[[str], None]]:
        t0 = time.perf_counter()
        notes: list[str] = []
        log.info("[%s] %s started", self.run_id, name)
        yield notes.append
        extra = f" ({'; '.join(notes)})" if notes else ""
        log.info("[%s] %s done in %.2fs%s", self.run_id, name, time.perf_counter() - t0, extra)

    def track(self, futures: list[Any]) -> None:
        """In a notebook, `distributed.progress` of the portfolio batches (a live widget)."""
        if _in_notebook():
            from distributed import progress

            progress(futures, notebook=True)

    def warn(self, text: str) -> None:
        log.warning("[%s] %s", self.run_id, text)
        self.echo(f"warning: {text}")

    def note(self, text: str) -> None:
        """Something the user should know that is not a problem (optional for a Reporter)."""
        self.echo(f"note: {text}")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class RunIdFilter(logging.Filter):
    """Stamps every admf_dask log record with the current run id (``%(run_id)s``)."""

    run_id = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = RunIdFilter.run_id
        return True


def new_run_id() -> str:
    """Sortable, unique: UTC time plus 6 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class _ClusterStart(threading.Thread):
    """`admf_dask.cluster.session_client` on a thread of its own; `result` waits for it.

    ``distributed`` is imported here first, by the calling thread, so the two threads never
    import the same modules at once (a concurrent import can hand one of them a half-initialized
    module). The thread inherits the caller's signal mask (`interrupt.start_shielded`), and so do
    the worker processes it starts.
    """

    def __init__(self, cfg: Any) -> None:
        import distributed  # noqa: F401

        from admf_dask.cluster import plugin, session_client, start_forkserver  # noqa: F401

        if not cfg.address:
            start_forkserver()  # the workers' modules load while this thread reads the data
        super().__init__(name="admf-dask-cluster-start", daemon=False)
        self.cfg = cfg
        self.client: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        from admf_dask.cluster import session_client

        try:
            self.client = session_client(self.cfg)
        except BaseException as exc:  # noqa: BLE001 - re-raised by `result` in the run's thread
            self.error = exc

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.client


@dataclass
class _Timer:
    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        interrupt.check()  # every stage starts at a safe point (the CLI's Ctrl-C; no-op otherwise)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 4)


def run(
    pipeline: str | Path | dict[str, Any] | PipelineConfig,
    client: Any = None,
    *,
    out: str | Path | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    reporter: Reporter | None = None,
    profile: bool = False,
    strict: bool = False,
) -> RunResult:
    """Run a pipeline and return its results.

    Parameters
    ----------
    pipeline : path, dict or PipelineConfig
        The pipeline (see `load_pipeline`).
    client : distributed.Client, optional
        Run on this client. Default: ``cluster.address`` if set, else this process's session
        LocalCluster (started once, reused by later runs, so persisted features are reused too).
    out : path, optional
        Run folder (default ``output.path``, relative to the current directory).
    overrides : list of str
        ``key.path=value`` overrides.
    reporter : Reporter, optional
        Progress display (CLI: rich). Default: the dashboard link printed, stages logged.
    profile : bool
        Save a Dask ``performance_report`` as ``profile.html`` in the run folder.
    strict : bool
        Failures that would only warn (an ML fold that cannot train) stop the run instead.

    Returns
    -------
    RunResult
        ``equity``, ``metrics``, ``orders``, ``signals``, ``features``, ``manifest``.
    """
    from admf_dask.cluster import describe_cluster, kernel_cache_cold

    cfg = load_pipeline(pipeline, overrides)
    reporter = reporter or LogReporter()
    run_id = new_run_id()
    RunIdFilter.run_id = run_id
    where = "--out" if out is not None else "output.path"
    # a URL (s3://...): the workers write the results straight under the run's temporary prefix
    # on the store, the client's own files are uploaded there at the end, and the prefix is
    # committed (rundir.commit_remote); a local path keeps the rename commit
    dest = resolve_loc(
        out if out is not None else cfg.output.path, cfg.output.storage_options, where=where
    )
    remote = None if dest.is_local else dest
    target = dest.local_path() if remote is None else None
    if remote is None:
        rundir.check_target(target, cfg.output.overwrite, where)
    else:
        rundir.check_remote_target(remote, cfg.output.overwrite, where)
        # bucket and credentials, before anything is computed
        probe(rundir.remote_temp(remote, run_id), where, shown=remote)
    timer = _Timer()
    t_start = time.perf_counter()
    started_at = datetime.now(UTC).isoformat()
    base_dir = Path(cfg.base_dir) if cfg.base_dir else None
    # the session cluster starts (its workers spawn and warm up) while this thread imports the
    # stages and reads the data
    starting = _ClusterStart(cfg.cluster) if client is None else None
    own_session = client is None
    if client is not None:
        from admf_dask.cluster.plugin import register

        register(client)  # a caller's cluster gets the worker setup too (no-op when it has it)
        _check_reach(client, cfg, out, where, base_dir, run_id)  # before anything is read
    from admf_dask.data import finish_fingerprint, load_market_data
    from admf_dask.data.calendar import periods_per_year
    from admf_dask.features import feature_stage
    from admf_dask.pipeline.research import research_fits, research_step
    from admf_dask.portfolio import expand_grid, run_portfolios
    from admf_dask.portfolio.grid import duplicate_note
    from admf_dask.portfolio.trades import benchmark_index
    from admf_dask.strategies import StrategyContext, signal_stage
    from admf_dask.strategies.diagnose import check_signals, nonzero_counts

    t_data = time.perf_counter()
    try:
        # lazy: the values are generated / read on the workers, fingerprinted once persisted
        data = load_market_data(
            cfg.data,
            base_dir=base_dir,
            compute_fingerprint=False,
            # a big CSV is converted once into the disk cache (workers read it: local ones only)
            cache=cfg.cache if cfg.cluster.address is None else None,
        )
        t_data = time.perf_counter() - t_data
        do_research = research_fits(cfg.research, data.sizes["time"])  # bad settings fail here
        benchmark_index(cfg.portfolios.benchmark, [str(s) for s in data.symbol.values])
        interrupt.check()
    except BaseException:
        # let the cluster finish starting, so that the caller's close_session closes all of it
        # (a cluster half started while its forkserver is stopped hangs until its timeouts)
        if starting is not None:
            with contextlib.suppress(BaseException):
                starting.result()
        raise
    # workers compile the kernels as they start: said before waiting for them (else ~30 s would
    # look like a hang)
    if kernel_cache_cold() and hasattr(reporter, "note"):
        reporter.note("compiling kernels, first run only (about 30 s)")
    if starting is not None:
        _warm_client()
        client = starting.result()
        # before the workers read anything (this thread read only what the client reads)
        _check_reach(client, cfg, out, where, base_dir, run_id)
    interrupt.check()
    cluster_info = describe_cluster(client)
    reporter.start(run_id, cluster_info.get("dashboard"))
    tmp: Path | None = (
        rundir.temp_dir_for(target, run_id) if remote is None else rundir.stage_dir(run_id)
    )
    # where the workers write results.zarr, the ledgers and signals.zarr: the run folder, or the
    # run's temporary prefix on the store (docs/ARCHITECTURE.md, "Object stores")
    direct = remote is not None and direct_writes(remote)
    work = rundir.remote_dir(remote, run_id) if direct else tmp
    try:
        # as_current: any dask compute inside the stages goes to this client (the persisted
        # collections live on its workers), without making it the process-wide default
        with (
            client.as_current(),
            faults.translating(client),
            _maybe_profile(profile, tmp / "profile.html"),
            _quiet_zarr(),
        ):
            disk, disk_off = _open_disk_cache(cfg, client, run_id, dest)
            with reporter.stage("data") as note, timer("data"):
                data = client.persist(data)
                finish_fingerprint(data, client)  # per-chunk digests, where the chunks live
                note(f"{data.sizes['symbol']} symbols × {data.sizes['time']} bars")
            timer.timings["data"] = round(timer.timings["data"] + t_data, 4)
            # the workers idle while this thread finds the features and signals and prepares the
            # portfolio stage: they load the research kernels meanwhile (held until research)
            warming = _warm_research(client, run_id) if do_research else []
            with reporter.stage("features") as note, timer("features"):
                features, feat_cache = feature_stage(data, cfg.features, client=client, disk=disk)
                note(f"{len(features.data_vars)} variables, cache {feat_cache}")
            ctx = StrategyContext(
                client=client,
                run_id=run_id,
                base_dir=base_dir,
                run_dir=tmp,
                strict=strict,
                cache=disk,
                warnings=[disk_off] if disk_off else [],
            )
            with reporter.stage("signals") as note, timer("signals"):
                signals, sig_cache = signal_stage(data, features, cfg.strategies, ctx)
                note(f"{signals.sizes['strategy']} strategies, cache {sig_cache}")
            disk_origin = disk.origins.get("signals") if disk is not None else None
            origin = _signal_origin(signals, sig_cache, run_id, dest, ctx, disk_origin)
            if disk is not None:
                ctx.warnings.extend(disk.warnings)
            # strategies that never signal: counted on the cluster while the portfolio stage is
            # prepared, checked before its tasks are submitted (with --strict: the run stops)
            counts = nonzero_counts(signals, client)
            for w in ctx.warnings:
                reporter.warn(w)

            def check() -> None:
                before = len(ctx.warnings)
                check_signals(signals, data, features, ctx, counts)
                for w in ctx.warnings[before:]:
                    reporter.warn(w)

            # signals.zarr is written by the workers while the portfolio tasks and then the
            # research stage run (neither reads it): its graph is built as the portfolio tasks
            # start, while this thread would only wait; waited for before anything else is written
            writing = None

            def start_writing() -> None:
                nonlocal writing
                if cfg.output.save_signals and writing is None:
                    writing = _write_signals(signals, work / "signals.zarr", client)

            try:
                with reporter.stage("portfolio") as note, timer("portfolio"):
                    ppy = periods_per_year(cfg.portfolios.periods_per_year, data.attrs)  # TIME.md
                    book = expand_grid(
                        cfg.portfolios.model_copy(update={"periods_per_year": ppy}),
                        cfg.execution,
                        list(signals.strategy.values),
                        data.sizes["symbol"],
                    )
                    dup = duplicate_note(book, cfg.portfolios.grid)
                    if dup:
                        ctx.warnings.append(dup)
                        reporter.warn(dup)
                    batch_size = _guard_memory(
                        cfg, data, features, signals, book, cluster_info, reporter, ctx.warnings
                    )
                    result = run_portfolios(
                        data,
                        signals,
                        features,
                        book,
                        work,
                        client=client,
                        run_id=run_id,
                        write_orders=cfg.output.orders,
                        write_trades=cfg.output.trades,
                        benchmark=cfg.portfolios.benchmark,
                        batch_size=batch_size,
                        on_submit=_tracked(getattr(reporter, "track", None), start_writing),
                        before_submit=check,
                    )
                    note(f"{book.n_portfolios} portfolios, {result.n_orders} orders")
                if result.n_orders == 0 and book.n_portfolios:
                    _no_orders(book.n_portfolios, strict, reporter, ctx.warnings)
                start_writing()  # a run whose portfolio stage submitted nothing
                if do_research and cfg.research.is_on(book.n_portfolios):
                    with reporter.stage("research") as note, timer("research"):
                        note(research_step(tmp, cfg.research, results=work / "results.zarr"))
                del warming
            except BaseException:
                # no task may still write into the folder the failed run removes
                if writing is not None:
                    with contextlib.suppress(BaseException):
                        writing.result()
                raise
            with reporter.stage("write") as note, timer("write"):
                if writing is not None:
                    writing.result()
                timer.timings["total"] = round(time.perf_counter() - t_start, 4)
                manifest = {
                    "tool": rundir.TOOL,  # with run_id and outputs: what overwrite may replace
                    "run_id": run_id,
                    "name": cfg.name,
                    "started_at": started_at,
                    "finished_at": datetime.now(UTC).isoformat(),
                    "config": _public_config(cfg),
                    "config_hash": config_hash(cfg),
                    "pipeline_dir": cfg.base_dir,
                    "data": {
                        "source": cfg.data.source,
                        "fingerprint": data.attrs.get("fingerprint"),
                        "symbols": [str(s) for s in data.symbol.values],
                        # a date; intraday bars: the full time (docs/TIME.md)
                        "start": bar_label(data.time.values[0], data.attrs.get("frequency")),
                        "end": bar_label(data.time.values[-1], data.attrs.get("frequency")),
                        "bars": int(data.sizes["time"]),
                        "frequency": data.attrs.get("frequency"),  # docs/TIME.md
                        "periods_per_year": book.periods_per_year,
                    },
                    "portfolios": {"n": int(book.n_portfolios), "n_orders": int(result.n_orders)},
                    "versions": versions(),
                    "cluster": cluster_info,
                    "timings": dict(timer.timings),
                    "stage_timings": getattr(result, "timings", {}),
                    "cache": {"features": feat_cache, "signals": sig_cache},
                    "cache_detail": _cache_detail(disk, feat_cache, sig_cache),
                    "signals_from": origin,
                    "trace": list(ctx.trace),
                    "ml": dict(ctx.quality),
                    "warnings": list(ctx.warnings),
                }
                write_manifest(tmp / "run.json", manifest)
                if cfg.output.report:
                    from admf_dask.report import build_report

                    build_report(tmp, market_data=data, data_dir=work)
                note(str(dest))
            timer.timings["total"] = round(time.perf_counter() - t_start, 4)
            manifest["timings"] = dict(timer.timings)
            manifest["outputs"] = rundir.outputs(tmp, work)
            write_manifest(tmp / "run.json", manifest)
        staging = rundir.upload_remote(tmp, remote, run_id) if remote is not None else None
        with interrupt.commit_guard():  # an interrupt now: the target ends absent or complete
            if staging is None:
                rundir.commit(tmp, target, cfg.output.overwrite, where)
                rundir.forget(tmp)
            else:
                rundir.commit_remote(tmp, staging, remote, cfg.output.overwrite, where)
        if remote is None:
            tmp = None
    finally:
        rundir.discard(tmp)
        if isinstance(work, Loc):  # a failure: the prefix the workers wrote into goes too
            rundir.discard_remote(work)
    res = open_run(remote) if remote is not None else open_local_run(target, signals=False)
    res._run_metrics = result.metrics  # the CLI's closing table, without a read back
    # the caller's client: dask collections, persisted on its cluster (``client.compute``,
    # ``persist``, chunks); the run's own session client, which the caller does not hold: read
    # through it (a plain dask compute would go to another scheduler: "Missing dependency")
    if own_session:
        features = through_client(features, client, "features")
        signals = through_client(signals, client, "signals")
    res.features, res.signals = features, signals
    return res


def _warm_client() -> None:
    """What this process would otherwise do after the workers are up, done while they start
    (this thread only waits for them then): import zarr (every run opens Zarr stores: a fifth
    of a second) and let xarray scan its entry points (chunk managers and backends, once per
    process, at the first dask-backed Dataset it builds or opens)."""
    import zarr  # noqa: F401

    with contextlib.suppress(Exception):  # an optimization: xarray scans them later otherwise
        from xarray.backends import list_engines
        from xarray.namedarray.parallelcompat import list_chunkmanagers

        list_engines()
        list_chunkmanagers()


def _warm_research(client: Any, run_id: str) -> list[Any]:
    """A low-priority task on each worker loading the research kernels
    (`admf_dask.research.stage.warm_research`); its futures, to hold until the stage runs (a
    future let go before its task ran cancels it)."""
    from admf_dask.research.stage import warm_research

    workers = list(client.scheduler_info().get("workers", {}))
    return [
        client.submit(
            warm_research,
            key=f"research-warm-{run_id}-{i}",
            workers=[w],
            allow_other_workers=False,
            pure=False,
            priority=-100,
        )
        for i, w in enumerate(workers)
    ]


def _public_config(cfg: PipelineConfig) -> dict[str, Any]:
    """The config for run.json, credentials in storage_options masked."""
    from admf_dask.dasktools.fs import redact

    dumped = cfg.model_dump(mode="json")
    for section in ("data", "output"):
        if dumped.get(section, {}).get("storage_options"):
            dumped[section]["storage_options"] = redact(dumped[section]["storage_options"])
    for spec in (dumped.get("strategies") or {}).values():  # a replayed file's URL options
        if isinstance(spec, dict) and spec.get("storage_options"):
            spec["storage_options"] = redact(spec["storage_options"])
    return dumped


def _write_signals(signals: Any, path: Path | Loc, client: Any) -> Any:
    """Start writing signals.zarr (its metadata now, its chunks by the workers holding them);
    the returned future's ``result`` waits for the write and raises its error."""
    delayed = _public_signals(signals).to_zarr(zarr_target(path), mode="w", compute=False)
    return client.compute(delayed)


def _public_signals(signals: Any) -> Any:
    """signals.zarr's Dataset: a replayed file's storage_options masked in ``strategy_specs``
    (as in run.json; the in-run diagnosis reads the unmasked specs of `signals` itself)."""
    import json

    from admf_dask.dasktools.fs import redact

    ds = signals.to_dataset(name="signals")
    text = signals.attrs.get("strategy_specs")
    if text:
        specs = json.loads(text)
        for spec in specs.values():
            if isinstance(spec, dict) and spec.get("storage_options"):
                spec["storage_options"] = redact(spec["storage_options"])
        ds["signals"].attrs = {
            **signals.attrs,
            "strategy_specs": json.dumps(specs, sort_keys=True),
        }
    return ds


# persisted signals (by identity, as the signal cache hands back the same object) → the run that
# computed them, its ML trace and fold quality: a cache hit reports where its models came from
_SIGNAL_ORIGINS: dict[int, dict[str, Any]] = {}


def _signal_origin(
    signals, status: str, run_id: str, target: Path, ctx, disk_origin: dict | None = None
) -> dict[str, Any]:
    if disk_origin and id(signals) not in _SIGNAL_ORIGINS:  # read from the disk cache
        # the signal stage already added the origin run's trace and fold quality to ctx
        _SIGNAL_ORIGINS[id(signals)] = {
            "run_id": disk_origin.get("run_id"),
            "path": disk_origin.get("path"),
            "trace": list(ctx.trace),
            "ml": dict(ctx.quality),
        }
        return {"run_id": disk_origin.get("run_id"), "path": disk_origin.get("path")}
    if status == "miss" or id(signals) not in _SIGNAL_ORIGINS:
        _SIGNAL_ORIGINS[id(signals)] = {
            "run_id": run_id,
            "path": str(target),
            "trace": list(ctx.trace),
            "ml": dict(ctx.quality),
        }
        return {"run_id": run_id, "path": str(target)}
    origin = _SIGNAL_ORIGINS[id(signals)]
    ctx.trace.extend(origin["trace"])
    ctx.quality.update(origin["ml"])
    return {"run_id": origin["run_id"], "path": origin["path"]}


def _check_reach(client, cfg, out, where: str, base_dir, run_id: str) -> None:
    """Every worker sees the run folder's place and the data files, else one line (exit 2)."""
    from admf_dask.cluster.reach import check_run_paths
    from admf_dask.errors import ConfigError

    target = out if out is not None else cfg.output.path
    if not is_url(target):
        check_run_paths(client, cfg, target, where, base_dir, run_id)
        return
    loc = resolve_loc(target, cfg.output.storage_options, where=where)
    if direct_writes(loc):
        # the workers write the run under its temporary prefix on the store: each must reach
        # the store with its credentials (docs/ARCHITECTURE.md, "Object stores")
        from admf_dask.cluster.reach import check_store_reach

        check_run_paths(client, cfg, target, where, base_dir, run_id)  # (the inputs)
        check_store_reach(client, rundir.remote_temp(loc, run_id), where, loc)
        return
    # memory:// is computed in a local staging folder, then uploaded: the workers write into
    # that folder, so they must see it
    stage = rundir.stage_path(run_id)
    try:
        check_run_paths(client, cfg, stage, where, base_dir, run_id)
    except ConfigError as exc:
        if exc.where != where:
            raise
        raise ConfigError(
            where,
            f"a run to {target} is computed in {stage} first and uploaded at the end, but "
            f"{exc.what}",
            "set TMPDIR to a folder every worker shares, or run on a local cluster",
        ) from None


def _open_disk_cache(cfg, client, run_id: str, target: Path):
    """The run's disk cache (`admf_dask.cache.open_cache`) and the warning when it is off."""
    from admf_dask.cache import open_cache

    return open_cache(cfg.cache, client, origin={"run_id": run_id, "path": str(target)})


def _cache_detail(disk, feat_cache: str, sig_cache: str) -> dict[str, Any]:
    """Where each hit came from (``session`` / ``disk``), the folder, disk hits and writes."""
    hits = disk.hits if disk is not None else {}
    src = {
        k: (("disk" if hits.get(k) else "session") if v == "hit" else None)
        for k, v in (("features", feat_cache), ("signals", sig_cache))
    }
    if disk is None:
        return {**src, "dir": None, "hits": {}, "written": {}}
    return {**src, "dir": str(disk.root), "hits": dict(disk.hits), "written": dict(disk.written)}


def _tracked(
    track: Callable[[list[Any]], None] | None, first: Callable[[], None] | None = None
) -> Callable[[list[Any]], None]:
    """The engine's `on_submit`: call `first` (work for this thread while the tasks run), show
    progress, then wait on the batch futures in a loop that notices an interrupt (a blocking
    gather would not)."""

    def on_submit(futures: list[Any]) -> None:
        if first is not None:
            first()
        if track is not None:
            track(futures)
        interrupt.wait(futures)

    return on_submit


def _no_orders(n_portfolios: int, strict: bool, reporter, warnings: list[str]) -> None:
    """A run that trades nothing says so (and stops in strict mode)."""
    from admf_dask.errors import ConfigError

    what = f"no portfolio placed an order ({n_portfolios:,} portfolio(s))"
    fix = "check the signals and the sizing (position_weight, rebalance_band)"
    if strict:
        raise ConfigError("portfolios", what, fix)
    text = f"{what}; check the warnings above, {fix[6:]}"
    warnings.append(text)
    reporter.warn(text)


def _guard_memory(cfg, data, features, signals, book, cluster_info, reporter, warnings) -> int:
    """Batch size that fits the workers (shrunk with a warning) and gives every worker thread a
    batch, or a ConfigError."""
    from admf_dask.pipeline.memory import plan_memory
    from admf_dask.portfolio.engine import split_for_threads

    workers = cluster_info.get("workers", [])
    plan = plan_memory(
        n_bars=data.sizes["time"],
        n_symbols=data.sizes["symbol"],
        n_features=len(features.data_vars),
        n_strategies=signals.sizes["strategy"],
        n_portfolios=book.n_portfolios,
        batch_size=cfg.portfolios.batch_size,
        tchunk=cfg.data.chunks.time,
        record_orders=cfg.output.orders or cfg.output.trades,
        worker_memory=[int(w.get("memory_limit") or 0) for w in workers],
        threads_per_worker=max([int(w.get("nthreads") or 1) for w in workers] or [1]),
    )
    if plan.shrunk:
        text = (
            f"batch_size {cfg.portfolios.batch_size} would not fit worker memory; using "
            f"{plan.batch_size} ({plan.describe()})"
        )
        warnings.append(text)
        reporter.warn(text)
    threads = sum(max(1, int(w.get("nthreads") or 1)) for w in workers)
    return split_for_threads(plan.batch_size, book.n_portfolios, threads)


@contextlib.contextmanager
def _quiet_zarr() -> Iterator[None]:
    """zarr 3 warns on every consolidated write; we consolidate on purpose (fast opens)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield


@contextlib.contextmanager
def _maybe_profile(enabled: bool, path: Path) -> Iterator[None]:
    if not enabled:
        yield
        return
    from distributed import performance_report

    with performance_report(filename=str(path)):
        yield
