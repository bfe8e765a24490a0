"""``python -m schemadiff`` and the ``schemadiff`` console script (``schemadiff.__main__:main``).

Everything, the import of :mod:`schemadiff.entry` included, runs inside one
``try``: an interrupt that lands before entry's own handlers exist (while
``signal`` is being imported, say) still ends the process with 130 and one
line, never a traceback. The ``except`` uses only what the interpreter's
start-up already loaded.
"""

try:
    from .entry import main

    if __name__ == "__main__":
        main()
except KeyboardInterrupt:  # before entry.main's own handler was in place
    import os
    import sys

    try:
        sys.stderr.write("interrupted: nothing was written.\n")
        sys.stderr.flush()
    except BaseException:  # a closed stderr, or a second signal: the exit code still says it
        pass
    os._exit(130)  # errors.EXIT_INTERRUPTED
