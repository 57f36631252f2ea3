"""Ctrl-C and SIGTERM as a flag acted on at safe points, never as an exception from anywhere.

Python's default ``KeyboardInterrupt`` is raised wherever the main thread happens to be: inside
distributed's GC callback (where it is swallowed and the run goes on), inside a ``Client`` call,
half-way through the cleanup of an earlier interrupt. The CLI instead installs handlers that only
record the signal, runs the command in a thread, and lets the main thread, which does nothing but
wait, clean up: close the cluster, remove the temporary run folder, print one line, exit 130. The
runner checks the flag between stages (`check`), while waiting on futures (`wait`) and right
before the run folder is renamed into place (`commit_guard`). See docs/ARCHITECTURE.md
("Interrupts").

Without `install` (the Python API, notebooks) the flag is never set and every check is a no-op.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: the signals received since `install`; appending is atomic, so the handler takes no lock (it
#: runs in the main thread between two bytecodes, possibly while that thread holds a lock)
_received: list[int] = []
_lock = threading.Lock()
_committed = False

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised by `check` in the command's thread once a signal was received."""


def _record(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    _received.append(signum)


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM by recording them; returns a function restoring the old handlers.

    Must be called from the main thread. Clears any earlier record.
    """
    global _committed
    _received.clear()
    _committed = False
    old = {s: signal.signal(s, _record) for s in SIGNALS}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


def requested() -> bool:
    """True once a SIGINT or SIGTERM was received."""
    return bool(_received)


def check() -> None:
    """Raise `Interrupted` if a signal was received (a safe point of the run)."""
    if _received:
        raise Interrupted


def wait(futures: Sequence[Any], poll: float = 0.1) -> None:
    """Wait until every future is done, checking for an interrupt every `poll` seconds.

    A blocking ``distributed.wait`` / ``gather`` would only return when the cluster is closed
    under it; polling lets the command's thread stop by itself.
    """
    from distributed import wait as wait_done

    pending = list(futures)
    while pending:
        check()
        with contextlib.suppress(TimeoutError):
            # returns as the last future finishes (a sleep between checks of ``done`` made the
            # run wait half a poll on average after its last task)
            wait_done(pending, timeout=poll)
        pending = [f for f in pending if not f.done()]


@contextlib.contextmanager
def commit_guard() -> Iterator[None]:
    """Around the rename of the run folder: refuses to start after an interrupt, and an interrupt
    that arrives during the rename waits for it (`stop`), so the target is absent or complete."""
    global _committed
    with _lock:
        check()
        yield
        _committed = True


def stop() -> bool:
    """Called by the cleanup once a signal was received: after this no commit starts.

    Returns
    -------
    bool
        True if the run folder was already committed (the run is complete: let it finish).
    """
    with _lock:
        return _committed


def start_shielded(target: Callable[[], None], name: str) -> threading.Thread:
    """Start `target` in a daemon thread that blocks SIGINT, as will every thread it starts.

    Processes inherit the signal mask of the thread that starts them, so the cluster's worker
    processes never see the Ctrl-C a terminal sends to its whole process group (each would print
    a KeyboardInterrupt traceback); the main thread alone receives it. Call from the main thread.
    """
    thread = threading.Thread(target=target, name=name, daemon=True)
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX: no masks, no process groups
        thread.start()
        return thread
    _start_resource_tracker()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return thread


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, from the main thread.

    Started lazily, it would be started by the thread spawning the first worker, and it unblocks
    SIGINT in the thread that starts it (so every later worker would get the Ctrl-C again). Its
    stderr is /dev/null: after an interrupt it reports the semaphores of the killed workers.
    """
    import os
    import sys
    from multiprocessing import resource_tracker

    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        resource_tracker.ensure_running()
    except Exception:  # noqa: BLE001 - no tracker (an odd platform): workers start it later
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class StderrRelay:
    """File descriptor 2 of this process, and so of every process it starts from now on (the
    cluster's workers), into a pipe that a thread copies to the real stderr.

    After `mute` everything is dropped: tearing down a half-done run makes workers and
    distributed log errors (a heartbeat to a closing scheduler, a cancelled task), none of which
    is the user's business; the CLI writes its one line to `real` instead.
    """

    def __init__(self) -> None:
        import os

        self.real = os.dup(2)
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        self._r = r
        self._muted = False
        self._thread = threading.Thread(target=self._pump, name="admf-dask-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        import os

        while True:
            try:
                data = os.read(self._r, 1 << 16)
            except OSError:
                return
            if not data:
                return
            while data and not self._muted:
                try:
                    data = data[os.write(self.real, data) :]
                except OSError:
                    break

    def mute(self) -> None:
        """Drop all that is written to stderr from now on (the pipe keeps being read)."""
        self._muted = True

    def close(self, timeout: float = 2.0) -> None:
        """Put the real stderr back on fd 2 and forward what is still in the pipe (up to
        `timeout` seconds: a process that still holds the pipe would keep it open)."""
        import os
        import sys

        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self.real, 2)
        self._thread.join(timeout)
