"""Progress messages: the one callback type that long-running steps take to say what they are doing.

The command layer passes the CLI's spinner here ("Starting the shadow
server", "Replaying 12 migrations"); the library's callers may pass their
own or nothing. Named ``Progress``, not "status", which is the ``status``
command and its :class:`schemadiff.runner.apply.StatusReport`.
Imports nothing: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable

# One short, human-readable line about what is starting now; its return value is ignored.
Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    """Discard a progress message: the default when nobody listens."""
