"""The process entry behind ``python -m schemadiff`` and the ``schemadiff`` console script.

An interrupt (Ctrl-C, SIGTERM) ends the process with 130 and one line,
never a traceback, whenever it arrives. This module owns that for the whole
process, so it runs before anything else of schemadiff's is imported
(typer, rich and psycopg take a few hundred milliseconds on a busy machine):

- SIGTERM is turned into KeyboardInterrupt first, as Python does for SIGINT;
- a KeyboardInterrupt Python had to swallow (raised inside a weakref
  callback or ``__del__``, "Exception ignored") is delivered again;
- a signal the parent left blocked (pending since before the interpreter
  started) is unblocked and so acted on at once, as an interrupt;
- any KeyboardInterrupt that reaches this function, from the imports or
  from the CLI's own reporting, ends the process here with 130; so does
  any other exception once a signal was received: Python wraps an
  exception raised inside ``__set_name__`` (a dataclass field while rich
  loads) in a RuntimeError (3.11), and code that catches and re-raises may
  turn the interrupt into its own error; the signal is the cause.

``schemadiff/__main__.py`` imports this module inside a ``try``, so an
interrupt while it loads (``import signal`` alone builds a few enums) ends
with 130 too. Only the interpreter's own start-up, before that ``try``, is
left with the signals' default action (the process ends by the signal);
README, "Exit codes", says so.
"""

from __future__ import annotations

import _thread  # built in: nothing to import while a signal is being handled
import os
import signal
import sys
import time

EXIT_INTERRUPTED = 130  # errors.EXIT_INTERRUPTED, which may not be imported yet
# SIGHUP (a closed SSH session or CI terminal) ends a run as SIGTERM does;
# absent on Windows.
_SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


_received: list[int] = []  # the signals turned into KeyboardInterrupt, latest last


def _raise_interrupt(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
    """``sys.unraisablehook``: a KeyboardInterrupt that Python had to swallow is delivered again.

    A signal handler runs between any two bytecodes, also inside a weakref
    callback or a ``__del__`` (importlib's module-lock callbacks run during
    every import), where Python cannot raise: it prints "Exception ignored"
    and goes on as if no signal had come. The signal is sent again, a few
    milliseconds later from a thread (sent at once, its handler would run
    inside this hook, where raising is lost the same way), so the handler
    raises in ordinary code; should it land in such a callback again, this
    repeats.
    """
    if isinstance(unraisable.exc_value, KeyboardInterrupt) or unraisable.exc_type is KeyboardInterrupt:
        _thread.start_new_thread(_send_again, (_received[-1] if _received else signal.SIGINT,))
        return
    _default_unraisable(unraisable)


_default_unraisable = sys.unraisablehook


def _send_again(signum: int) -> None:
    time.sleep(0.005)
    os.kill(os.getpid(), signum)


def _end_interrupted() -> None:
    # Further signals would only interrupt these few lines.
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    try:
        sys.stderr.write("interrupted: nothing was written; temporary databases were dropped.\n")
        sys.stderr.flush()
    except BaseException:  # a closed stderr: the exit code still says it
        pass
    os._exit(EXIT_INTERRUPTED)


def main() -> None:
    """Run the CLI (``schemadiff.cli.main``) with interrupts turned into exit 130; never returns."""
    try:
        sys.unraisablehook = _unraisable
        signal.signal(signal.SIGTERM, _raise_interrupt)
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:  # not under nohup
            signal.signal(signal.SIGHUP, _raise_interrupt)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when the parent ignores SIGINT
            signal.signal(signal.SIGINT, _raise_interrupt)
        if hasattr(signal, "pthread_sigmask"):  # not on Windows
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        from . import cli

        cli.signals_received = _received  # the same list: the CLI tells a failure a signal caused (see cli._run)
        cli.main()
    except KeyboardInterrupt:
        _end_interrupted()
    except Exception:  # not SystemExit: the CLI's own exit code stands
        if _received:  # see the module docstring: an error an interrupt caused ends as the interrupt
            _end_interrupted()
        raise
