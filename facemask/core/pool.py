"""Process pools for per-video work that leave no worker behind when the run fails or is interrupted.

`concurrent.futures.ProcessPoolExecutor` used as a context manager waits, on the way out, for every
job already handed to a worker; after Ctrl-C, SIGTERM (`facemask.core.errors.Terminated`) or a failed job
that can be a minute of work whose results nobody reads, and a parent killed meanwhile leaves its
workers orphaned. `process_pool` terminates the workers at once instead (what Python 3.14's
``ProcessPoolExecutor.terminate_workers`` does) and waits for them to exit.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator

#: Seconds a terminated worker gets to exit before it is killed.
JOIN_TIMEOUT = 5.0


def _init_worker(initializer: Callable[[], None] | None) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and terminates the workers,
    # which would otherwise each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer()


def terminate(ex: ProcessPoolExecutor) -> None:
    """Cancel the pending jobs of `ex`, terminate its workers and wait until they are gone."""
    procs = list((getattr(ex, "_processes", None) or {}).values())  # Python < 3.14 has no public handle
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(ProcessLookupError, ValueError):
            p.terminate()
    for p in procs:
        with contextlib.suppress(ValueError):
            p.join(JOIN_TIMEOUT)
            if p.is_alive():
                p.kill()
                p.join()


@contextlib.contextmanager
def process_pool(workers: int, initializer: Callable[[], None] | None = None) -> Iterator[ProcessPoolExecutor]:
    """A ``spawn`` process pool of `workers` processes (each runs `initializer` first, if given).

    On normal exit the pool shuts down as usual; if the block raises anything (an error, Ctrl-C,
    SIGTERM / SIGHUP turned into `facemask.core.errors.Terminated`), pending jobs are cancelled and the
    workers terminated before the exception goes on.
    """
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(initializer,))
    try:
        yield ex
    except BaseException:
        terminate(ex)
        raise
    ex.shutdown(wait=True)
