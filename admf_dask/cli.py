"""``admf-dask`` command line: run | validate | report.

Exit codes: 0 success; 2 bad input (one ``error:`` line on stderr, no traceback); 1 a bug;
130 interrupted (Ctrl-C / SIGTERM: the cluster is closed and no partial run folder remains).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator

from admf_dask.errors import InputError
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
        from distributed import as_completed, wait

        if not self.console.is_terminal:
            wait(futures)
            return
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
            for _ in as_completed(futures):
                prog.advance(task)

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]warning:[/] {text}")


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


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
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _setup_logging()
    try:
        if args.command == "validate":
            from pathlib import Path

            from admf_dask.config import config_hash, load_pipeline
            from admf_dask.data import load_market_data

            cfg = load_pipeline(args.pipeline, args.overrides)
            # the data too: a bad file is found now, not after a cluster has started
            data = load_market_data(cfg.data, base_dir=Path(cfg.base_dir) if cfg.base_dir else None)
            print(
                f"ok: {args.pipeline} is valid (config hash {config_hash(cfg)}; data "
                f"{data.sizes['symbol']} symbols × {data.sizes['time']} bars, "
                f"{str(data.time.values[0])[:10]} to {str(data.time.values[-1])[:10]})"
            )
            return 0
        if args.command == "report":
            from admf_dask.report import build_report

            path = build_report(args.run_dir)
            print(f"report: {path}")
            return 0
        from admf_dask.pipeline import run

        overrides = list(args.overrides)
        if args.address:
            overrides.append(f"cluster.address={args.address}")
        reporter = RichReporter(quiet=args.quiet)
        result = run(
            args.pipeline,
            out=args.out,
            overrides=overrides,
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
    except KeyboardInterrupt:
        sys.stderr.write(
            "error: interrupted; the cluster was shut down and no run folder was written\n"
        )
        return 130
    finally:
        from admf_dask.cluster import close_session

        with contextlib.suppress(Exception):
            close_session()


def _summary(reporter: RichReporter, result) -> None:
    from rich.table import Table

    m = result.metrics
    n = len(m)
    c = reporter.console
    c.print(f"[bold]{n}[/] portfolios → [cyan]{result.path}[/]")
    if n and "sharpe" in m:
        top = m.sort_values("sharpe", ascending=False).head(5)
        grid = list(result.manifest.get("config", {}).get("portfolios", {}).get("grid", {}))
        cols = [
            c
            for c in (*grid, "total_return", "annual_return", "sharpe", "max_drawdown", "n_orders")
            if c in top.columns
        ]
        t = Table(title="best portfolios by Sharpe")
        t.add_column("portfolio", justify="right")
        for col in cols:
            t.add_column(col, justify="right")
        for pid, row in top.iterrows():
            t.add_row(str(pid), *[_fmt(row[col]) for col in cols])
        c.print(t)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "none" if v != v else f"{v:.4g}"  # NaN is a null grid value
    return str(v)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
