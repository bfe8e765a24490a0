"""``python -m schemadiff`` and the ``schemadiff`` console script.

An interrupt (Ctrl-C, SIGTERM) ends the process with 130 and one line,
never a traceback, whenever it arrives. This module owns that for the whole
process, so it runs before anything else of schemadiff's is imported
(typer, rich and psycopg take a few hundred milliseconds on a busy machine):

- SIGTERM is turned into KeyboardInterrupt first, as Python does for SIGINT;
- a signal the parent left blocked (pending since before the interpreter
  started) is unblocked and so acted on at once, as an interrupt;
- any KeyboardInterrupt that reaches this function, from the imports or
  from the CLI's own reporting, ends the process here with 130.

Only the interpreter's own start-up, before this module's first line, is
left with the signals' default action (the process ends by the signal);
README, "Exit codes", says so.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 130  # errors.EXIT_INTERRUPTED, which may not be imported yet
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


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
        signal.signal(signal.SIGTERM, _raise_interrupt)
        if hasattr(signal, "pthread_sigmask"):  # not on Windows
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        _end_interrupted()


if __name__ == "__main__":
    main()
