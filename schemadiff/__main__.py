"""``python -m schemadiff`` and the ``schemadiff`` console script.

SIGTERM is turned into KeyboardInterrupt here, before the CLI's imports
(typer and rich take about 0.1 s): a CI job cancelled in its first moments
exits 130 like one cancelled later, not 143. Only the interpreter's own
start-up, before this module runs, is left with the default action.
"""

from __future__ import annotations

import os
import signal
import sys


def _sigterm_as_interrupt(signum, frame):  # pragma: no cover - exercised via subprocess
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written; temporary databases were dropped.\n")
        sys.stderr.flush()
        os._exit(130)  # EXIT_INTERRUPTED; errors.py may not be imported yet
    cli_main()


if __name__ == "__main__":
    main()
