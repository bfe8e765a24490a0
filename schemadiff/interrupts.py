"""Holding back Ctrl-C and SIGTERM while a few files are put in place.

A KeyboardInterrupt can be raised between any two bytecodes, so a step
that must be all or nothing (a migration pair and its ``schemadiff.sum``)
either undoes itself on the interrupt or keeps it out for its few
milliseconds. ``deferred`` does the latter and then reports the interrupt
truthfully: the step finished, then the run stopped.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from .errors import Interrupted

_SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


@contextlib.contextmanager
def deferred(done: Callable[[], str]) -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM recorded instead of acted on.

    When one arrived, raises :class:`schemadiff.errors.Interrupted` (exit
    130) after the block, whose message is ``done()`` (what the block
    completed). Outside the main thread signals cannot be handled by
    Python anyway, so the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for signum in _SIGNALS:
        previous[signum] = signal.signal(signum, lambda number, _frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(f"interrupted; {done()}", "Run the command again if more was to be done.")
