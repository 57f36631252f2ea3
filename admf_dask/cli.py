"""``admf-dask`` command line: run | validate | report | cache.

Exit codes: 0 success; 2 bad input (one ``error:`` line on stderr, no traceback); 1 a bug;
130 interrupted (Ctrl-C / SIGTERM: the cluster is closed, no partial run folder remains, and stderr
holds the one ``error: interrupted; ...`` line). A signal that arrives once the run folder is in
place does not undo the run: it finishes (summary) and exits 0.

Signals are handled by `admf_dask.pipeline.interrupt`: the command runs in a thread, the main
thread waits and, on a signal, cleans up (see docs/ARCHITECTURE.md, "Interrupts").
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from admf_dask.errors import InputError
from admf_dask.pipeline import interrupt
from admf_dask.pipeline.faults import ClusterFault


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one ``error:`` line and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {self.prog}: {message}; see '{self.prog} --help'\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="admf-dask", description="Backtest thousands of portfolios on Dask.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a pipeline file and write its run folder")
    r.add_argument("pipeline", help="pipeline YAML file")
    r.add_argument("--out", help="run folder (default: output.path of the pipeline)")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a pipeline key, e.g. --set data.bars=1000 (repeatable)",
    )
    r.add_argument("--address", help="existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    r.add_argument("--profile", action="store_true", help="save a Dask performance report")
    r.add_argument("--strict", action="store_true", help="stop on failures that would only warn")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    v = sub.add_parser("validate", help="check a pipeline file without running it")
    v.add_argument("pipeline")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    rep = sub.add_parser("report", help="rebuild report.html of a run folder")
    rep.add_argument("run_dir")
    rs = sub.add_parser(
        "research", help="recompute psr/dsr, PBO and walk-forward on a finished run (no re-run)"
    )
    rs.add_argument("run_dir")
    rs.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="research.KEY=VALUE",
        help="override a research key, e.g. --set research.cscv_blocks=8 (repeatable)",
    )
    ca = sub.add_parser("cache", help="show or clear the on-disk cache of features and signals")
    ca.add_argument("action", choices=("info", "clear"), help="info: what is cached; clear: empty")
    ca.add_argument("--dir", help="cache folder (default: $ADMF_DASK_CACHE, else the user cache)")
    sc = sub.add_parser("schema", help="print the JSON schema of the pipeline file (for editors)")
    sc.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    ing = sub.add_parser(
        "ingest", help="convert a long CSV once into a Parquet store read lazily (source parquet)"
    )
    ing.add_argument("csv", help="the CSV (time, symbol, open, high, low, close, volume)")
    ing.add_argument("out", help="the store's folder (replaced only if admf-dask ingest wrote it)")
    ing.add_argument("--date-format", help="strftime format of the times (default: inferred)")
    ing.add_argument("--columns", help="the file's column names, e.g. time=Date,symbol=Ticker")
    return p


class RichReporter:
    """Rich live display: one line per stage with a spinner and elapsed time, so long runs
    never look frozen; the dashboard link first."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = Console(quiet=quiet)  # stdout: stderr holds only the error line
        self.run_id = ""

    def start(self, run_id: str, dashboard: str | None) -> None:
        self.run_id = run_id
        self.console.print(f"[bold]admf-dask[/] run [cyan]{run_id}[/]")
        if dashboard:
            self.console.print(f"dashboard: [link={dashboard}]{dashboard}[/link]")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Callable[[str], None]]:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        notes: list[str] = []
        t0 = time.perf_counter()
        live = self.console.is_terminal  # a pipe or a log file gets the result lines only
        with (
            contextlib.nullcontext()
            if not live
            else Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            ) as prog
        ):
            if live:
                prog.add_task(f"{name}…", total=None)
            yield notes.append
        extra = f"  [dim]{'; '.join(notes)}[/]" if notes else ""
        self.console.print(f"[green]✓[/] {name:<10} {time.perf_counter() - t0:7.2f}s{extra}")

    def track(self, futures: list) -> None:
        """A bar over the portfolio batches, advancing as each batch's chain finishes."""
        if not self.console.is_terminal:
            return  # the runner waits (and notices interrupts) after this
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "  batches",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as prog:
            task = prog.add_task("batches", total=len(futures))
            from distributed import wait

            done = 0
            while done < len(futures):
                interrupt.check()
                pending = [f for f in futures if not f.done()]
                with contextlib.suppress(TimeoutError):  # wakes as a batch finishes
                    wait(pending, timeout=0.1, return_when="FIRST_COMPLETED")
                done = sum(f.done() for f in futures)
                prog.update(task, completed=done)

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]warning:[/] {text}")

    def note(self, text: str) -> None:
        self.console.print(f"[dim]note:[/] {text}")


def _setup_logging() -> None:
    from admf_dask.pipeline.runner import RunIdFilter

    handler = logging.StreamHandler()
    handler.addFilter(RunIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(run_id)s %(levelname)s %(message)s"))
    lg = logging.getLogger("admf_dask")
    lg.addHandler(handler)
    lg.setLevel(logging.WARNING)
    lg.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``admf-dask`` console script."""
    global _RELAY
    program = argv is None  # the console script (else a caller in Python: leave it running)
    restore = interrupt.install()  # first of all: from here on a signal is recorded, not raised
    if program:
        _RELAY = interrupt.StderrRelay()  # before any worker starts: they inherit its stderr
    try:
        args = build_parser().parse_args(argv)
        rc = _run_in_thread(args, early=program)
    except BaseException:
        if _RELAY is not None:  # argparse's line or a bug's traceback: to the real stderr
            _RELAY.close()
        raise
    finally:
        if not program:
            restore()
    if program:
        # all is closed and written: end now rather than after the interpreter's teardown of
        # dask, numba and pyarrow (seconds, in which a Ctrl-C would kill it with no handler left)
        logging.shutdown()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        if rc != 130:
            _RELAY.close()
        _remove_mp_temp_dir()
        os._exit(rc)
    return rc


def _remove_mp_temp_dir() -> None:
    """Remove multiprocessing's temporary folder of this process (``pymp-*``, where the workers'
    forkserver had its socket): its own finalizer runs in the interpreter's teardown, which the
    console script's `os._exit` skips (every run left an empty folder in the temp dir)."""
    process = sys.modules.get("multiprocessing.process")
    temp = process.current_process()._config.get("tempdir") if process is not None else None
    if temp:
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


#: the console script's stderr relay (`interrupt.StderrRelay`); None when called from Python
_RELAY: interrupt.StderrRelay | None = None


def _run_in_thread(args: argparse.Namespace, early: bool = False) -> int:
    """Run the command in a thread; the main thread only waits, and cleans up after a signal.

    `early`: the console script, whose process does nothing else: a run starts its workers'
    server first of all (`_start_workers_server`).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            if early:
                # the workers' server first of all: its imports are the start of a run's
                # critical path; bad input then stops it before it forked any worker
                _start_workers_server(args)
                outcome["rc"] = _precheck(args)  # bad input: rejected before anything else
                if outcome["rc"] is not None:
                    return
                _import_arrays(args)
            _setup_logging()
            outcome["rc"] = _command(args)
        except BaseException as exc:  # noqa: BLE001 - handed over to the main thread
            outcome["exc"] = exc

    if interrupt.requested():
        return _interrupted(args.command, None)
    worker = interrupt.start_shielded(target, "admf-dask-command")
    while worker.is_alive():
        # once the run folder is committed a signal is ignored: the run has finished
        if interrupt.requested() and not interrupt.stop():
            return _interrupted(args.command, worker)
        worker.join(0.1)
    exc = outcome.get("exc")
    if isinstance(exc, interrupt.Interrupted):
        return _interrupted(args.command, worker)
    try:
        if exc is not None:
            raise exc
        return outcome["rc"]
    finally:
        from admf_dask.cluster import close_session

        with contextlib.suppress(Exception):
            close_session()


def _precheck(args: argparse.Namespace) -> int | None:
    """The pipeline file, its ``--set`` overrides and the arguments of ``run`` / ``validate``,
    checked before the arrays are imported or a cluster starts: bad input prints its one
    ``error:`` line (exit 2), and the workers' server, which had no worker to fork yet, is
    stopped with the session. None when they pass (the command then checks the stages' specs
    too, `admf_dask.config.load_pipeline`)."""
    if args.command not in ("run", "validate"):
        return None
    try:
        _load(args, stages=False)
    except InputError as exc:
        sys.stderr.write(f"error: {exc.line}\n")
        return 2
    return None


def _load(args: argparse.Namespace, stages: bool = True):
    """The pipeline of ``run`` / ``validate`` with its overrides (``--address`` is one), and the
    run's folder checked (`admf_dask.dasktools.fs.refuse_process_local`)."""
    from admf_dask.config import load_pipeline

    if args.command == "validate":
        return load_pipeline(args.pipeline, args.overrides, stages=stages)
    from admf_dask.dasktools.fs import refuse_process_local

    overrides = list(args.overrides)
    if args.address:
        overrides.append(f"cluster.address={args.address}")
    if args.out is not None:
        refuse_process_local(args.out, "--out")
    cfg = load_pipeline(args.pipeline, overrides, stages=stages)
    if args.out is None:
        refuse_process_local(cfg.output.path, "output.path")
    return cfg


def _start_workers_server(args: argparse.Namespace) -> None:
    """A run on a local cluster: the workers' forkserver first of all (this thread's signal mask
    is the workers'), so it imports their modules and loads the kernels while this thread
    imports the pipeline's and reads it (`admf_dask.cluster.start_forkserver`). A run that
    turns out not to need it (``cluster.address`` in the file, bad input) ends it with the
    session (`admf_dask.cluster.close_session`)."""
    if args.command == "run" and not args.address:
        from admf_dask.cluster import start_forkserver

        with contextlib.suppress(Exception):  # only a head start: the run starts it otherwise
            start_forkserver()


def _import_arrays(args: argparse.Namespace) -> None:
    """The commands that build dask arrays import ``dask.array`` without the scipy modules it
    would register and the engine never uses (`admf_dask.cluster._server.import_dask_array`);
    this process runs the engine's code only."""
    if args.command in ("run", "validate"):
        from admf_dask.cluster._server import import_dask_array

        import_dask_array()


_INTERRUPTED = {
    "run": "the cluster was shut down and no run folder was written",
    "ingest": "nothing was written",
    "validate": "nothing was written",
    "report": "report.html was left as it was",
}


def _interrupted(command: str, worker: threading.Thread | None) -> int:
    """After a signal: stop the cluster, remove the temporary run folder, print one line.

    The cluster goes first: a task still running on a worker may write into the temporary folder
    (Zarr re-creates the folders it writes into), so the folder is removed once no worker is left.
    """
    err = _silence_stderr()
    from admf_dask.cluster import close_session
    from admf_dask.pipeline import rundir

    with contextlib.suppress(Exception):
        close_session()  # the command's Client calls now fail, and its thread unwinds
    if worker is not None:
        worker.join(timeout=30)
    with contextlib.suppress(Exception):
        close_session()  # one the command was still starting when the signal came
    rundir.discard_pending()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os.write(err, f"error: interrupted; {_INTERRUPTED.get(command, 'stopped')}\n".encode())
    if worker is not None and worker.is_alive():  # stuck in a library call: do not wait for it
        os._exit(130)
    return 130


def _silence_stderr() -> int:
    """Silence stderr for the rest of the process and return a file descriptor of the real one:
    tearing down a half-done run makes distributed (here and in the workers) log, warn and print
    'Exception ignored' lines, none of which is the user's business."""
    logging.disable(logging.CRITICAL)
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    if _RELAY is not None:  # the workers' stderr too
        _RELAY.mute()
        return _RELAY.real
    saved = os.dup(2)  # called from Python: this process only
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    return saved


def _on_store(args: argparse.Namespace) -> int:
    """``report`` / ``research`` of a run on an object store: done on a local copy, committed
    back like a run (run.json last; credentials from the environment)."""
    from admf_dask.dasktools.fs import resolve
    from admf_dask.pipeline.rundir import remote_edit

    with remote_edit(resolve(args.run_dir, where=args.run_dir), args.run_dir) as local:
        if args.command == "report":
            from admf_dask.report import build_report

            build_report(local)
            text = f"report: {args.run_dir.rstrip('/')}/report.html"
        else:
            from admf_dask.pipeline.research import research, summary_text

            text = summary_text(research(local, args.overrides), local)
            text = text.replace(str(local), args.run_dir.rstrip("/"))
    print(text)
    return 0


def _command(args: argparse.Namespace) -> int:
    """Run one command; bad input → one ``error:`` line and exit 2."""
    try:
        if args.command == "validate":
            from pathlib import Path

            from admf_dask.config import config_hash
            from admf_dask.data import load_market_data

            cfg = _load(args)
            # the data too: a bad file is found now, not after a cluster has started
            # a file's bars are checked with its fingerprint; the synthetic market is valid as made
            data = load_market_data(
                cfg.data,
                base_dir=Path(cfg.base_dir) if cfg.base_dir else None,
                compute_fingerprint=cfg.data.source != "synthetic",
            )
            from admf_dask.pipeline.research import research_fits

            research_fits(cfg.research, data.sizes["time"])  # settings the data cannot meet
            if cfg.portfolios.benchmark is not None:  # as `run` checks it (numba: only then)
                from admf_dask.portfolio.trades import benchmark_index

                benchmark_index(cfg.portfolios.benchmark, [str(s) for s in data.symbol.values])
            print(
                f"ok: {args.pipeline} is valid (config hash {config_hash(cfg)}; data "
                f"{data.sizes['symbol']} symbols × {data.sizes['time']} bars, "
                f"{str(data.time.values[0])[:10]} to {str(data.time.values[-1])[:10]})"
            )
            return 0
        if args.command == "schema":
            from admf_dask.config.schema import write_schema

            write_schema(args.out)
            return 0
        if args.command in ("report", "research"):
            from admf_dask.dasktools.fs import is_url

            if is_url(args.run_dir):
                return _on_store(args)
        if args.command == "report":
            from admf_dask.report import build_report

            path = build_report(args.run_dir)
            print(f"report: {path}")
            return 0
        if args.command == "research":
            from admf_dask.pipeline.research import research, summary_text

            print(summary_text(research(args.run_dir, args.overrides), args.run_dir))
            return 0
        if args.command == "ingest":
            from admf_dask.data.ingest import ingest_command

            return ingest_command(args.csv, args.out, args.date_format, args.columns)
        if args.command == "cache":
            from admf_dask.cache.command import cache_command

            return cache_command(args.action, args.dir)
        from admf_dask.pipeline import run

        cfg = _load(args)  # the file is read once more, here: run takes cfg
        reporter = RichReporter(quiet=args.quiet)
        result = run(
            cfg,
            out=args.out,
            reporter=reporter,
            profile=args.profile,
            strict=args.strict,
        )
        _summary(reporter, result)
        return 0
    except InputError as exc:
        sys.stderr.write(f"error: {exc.line}\n")
        return 2
    except ClusterFault as exc:  # the cluster failed a valid run (e.g. workers out of memory)
        sys.stderr.write(f"error: {exc.line}\n")
        return exc.exit_code


def _summary(reporter: RichReporter, result) -> None:
    m = result._closing_metrics()  # the run's own metrics: results.zarr is not read back
    n = len(m)
    c = reporter.console
    c.print(f"[bold]{n}[/] portfolios → [cyan]{result.path}[/]")
    if n and "sharpe" in m:
        from admf_dask.portfolio.grid import run_groups

        man = result.manifest
        strategies = list((man.get("config") or {}).get("strategies") or {})
        symbols = (man.get("data") or {}).get("symbols") or []
        groups = run_groups(man, strategies, len(symbols), n)
        if groups is not None:  # one row per group of duplicates (identical results)
            ids = m.index.to_numpy()
            m = m[groups[ids] == ids]
        top = m.sort_values("sharpe", ascending=False).head(5)
        grid = list(result.manifest.get("config", {}).get("portfolios", {}).get("grid", {}))
        c.print(summary_table(top, grid, c.width))


#: the closing table's metric columns: (metrics column, header, format), most wanted first
_METRIC_COLUMNS = (
    ("sharpe", "sharpe", "{:.2f}"),
    ("total_return", "ret", "{:.1%}"),
    ("max_drawdown", "maxdd", "{:.1%}"),
    ("annual_return", "ann", "{:.1%}"),
    ("n_orders", "orders", "{:,.0f}"),
)

#: short headers of the grid keys (the portfolios section's names)
_GRID_HEADERS = {
    "strategy": "strategy",
    "sizing": "sizing",
    "position_weight": "weight",
    "target_vol": "tvol",
    "vol_feature": "volfeat",
    "max_position": "maxpos",
    "max_gross": "gross",
    "allow_short": "short",
    "stop_loss": "stop",
    "max_drawdown": "ddhalt",
    "rebalance_band": "band",
    "commission": "comm",
    "commission_fixed": "fixcomm",
    "slippage_bps": "slip",
}


def summary_table(top, grid_keys: list[str], width: int):
    """The closing table: the best portfolios with the columns that fit `width` terminal cells.

    Columns are taken in order of interest (id, Sharpe, return, drawdown, the grid keys, annual
    return, orders) while the table still fits; a column that does not is left out (named in the
    caption) rather than cut to ``…`` by rich. Headers are short, numbers formatted.

    Parameters
    ----------
    top : pandas.DataFrame
        Metrics of the portfolios to show (index: portfolio id), as `RunResult.metrics`.
    grid_keys : list of str
        The grid keys of the run, in the order written.
    width : int
        Terminal width in cells.

    Returns
    -------
    rich.table.Table
    """
    from rich.cells import cell_len
    from rich.table import Table

    from admf_dask.portfolio.grid import grid_coord_name

    def metric(fmt: str):
        return lambda v: "n/a" if v is None or v != v else fmt.format(v)

    cands: list[tuple[str, str, Callable[[Any], str]]] = [
        (col, head, metric(fmt)) for col, head, fmt in _METRIC_COLUMNS[:3]
    ]
    for key in grid_keys:
        head = _GRID_HEADERS.get(key, key)
        cands.append((grid_coord_name(key), head, _grid_value))
    cands += [(col, head, metric(fmt)) for col, head, fmt in _METRIC_COLUMNS[3:]]
    ids = [str(pid) for pid in top.index]
    used = 1 + max([cell_len("id"), *map(cell_len, ids)]) + 3  # borders, padding
    chosen, left_out = [], []
    for col, head, fmt in cands:
        if col not in top.columns:
            continue
        cells = [fmt(v) for v in top[col].tolist()]
        need = max([cell_len(head), *map(cell_len, cells)]) + 3  # padding 2, border 1
        if used + need <= width:
            chosen.append((head, cells))
            used += need
        else:
            left_out.append(head)
    caption = f"not shown (too narrow): {', '.join(left_out)}" if left_out else None
    t = Table(title="best portfolios by Sharpe", caption=caption)
    t.add_column("id", justify="right", no_wrap=True)
    for head, _ in chosen:
        t.add_column(head, justify="right", no_wrap=True)
    for i, pid in enumerate(ids):
        t.add_row(pid, *[cells[i] for _, cells in chosen])
    return t


def _grid_value(v: Any) -> str:
    if isinstance(v, float):
        return "none" if v != v else f"{v:g}"  # NaN is a null grid value
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
