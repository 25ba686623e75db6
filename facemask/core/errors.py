"""The project's error types, and `run`: one line per error, nothing half-written on any signal.

Errors that are the user's to fix (a bad params value, unusable input data, an output folder that
cannot be written) raise a `FacemaskError` whose message names the file or the params key first and
then the reason (``data/raw/300VW/001/vid.avi: ...``, ``params.yaml: masks.crop_scale: ...``).
`run` is the one entry point of the stages and of the ``facemask`` command: it prints such an error
as ``error: <message>`` on stderr (one line per line of the message) and returns 1; any other
exception is a bug and keeps its traceback. ``--debug`` (or ``FACEMASK_DEBUG=1``) shows the
traceback of every error.

Signals: SIGTERM and SIGHUP (a timeout, a cancelled CI job, a closed terminal, plain ``kill``) are
turned into the `Terminated` exception, like SIGINT into `KeyboardInterrupt`, so the same clean-up
runs for all three: `facemask.core.io.atomic_dir` removes its temporary folder and `facemask.core.pool`
terminates its worker processes. The exit status is then 128 + the signal number (130 for SIGINT).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from typing import Callable, Iterator

#: Exit status of a `FacemaskError`.
EXIT_ERROR = 1
#: The signals handled like SIGINT (which Python already turns into KeyboardInterrupt).
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class FacemaskError(Exception):
    """An error the user can fix; the message starts with the file or params key, then the reason."""


class ParamsError(FacemaskError, ValueError):
    """A params file (``params.yaml``) with a bad, missing or unknown key."""


class InputError(FacemaskError):
    """Input data that is missing, unreadable or unusable (an archive, a video, annotations, a model file)."""


class MissingInputError(InputError, FileNotFoundError):
    """An input file or folder that does not exist (often: an earlier stage has not run)."""


class BadInputError(InputError, ValueError):
    """Input data whose content cannot be used (too few videos, every frame dropped, ...)."""


class OutputError(FacemaskError):
    """An output destination that cannot or must not be written."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM or SIGHUP, so that clean-up runs as for Ctrl-C.

    A BaseException, like KeyboardInterrupt: ``except Exception`` blocks do not swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def _raise_terminated(signum, frame):
    for s in SIGNALS:  # the clean-up that follows must not be cut short by a repeated signal
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` (the previous handlers come back after).

    Only the main thread can set handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def debug_requested() -> bool:
    """Whether ``FACEMASK_DEBUG`` asks for tracebacks (any value but empty, 0, false, no)."""
    return os.environ.get("FACEMASK_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def print_error(err: BaseException, file=None) -> None:
    """``error: <line>`` for every line of the message, on stderr."""
    file = file or sys.stderr
    for line in (str(err) or type(err).__name__).splitlines() or [""]:
        print(f"error: {line}", file=file)


def run(fn: Callable[[], object], debug: bool = False) -> int:
    """Call `fn` with signal handling and one-line errors; return the exit status.

    Returns:
        `fn`'s int result (None counts as 0); 1 after a `FacemaskError` (printed as ``error: ...``);
        130 after Ctrl-C and 128 + N after signal N (SIGTERM 143, SIGHUP 129), once every clean-up
        has run. Other exceptions propagate with their traceback, as do `FacemaskError` with
        `debug` or ``FACEMASK_DEBUG=1``.
    """
    debug = debug or debug_requested()
    try:
        with signals_as_exceptions():
            result = fn()
    except FacemaskError as e:
        if debug:
            traceback.print_exc()
        print_error(e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted (SIGINT); outputs left as they were", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as e:
        if debug:
            traceback.print_exc()
        print(f"{e}; outputs left as they were", file=sys.stderr)
        return 128 + e.signum
    return 0 if result is None else int(result)


class PredictError(InputError):
    """`facemask predict`: bad input or models; the message names the file and the problem."""
