"""The shadow server: where untrusted SQL is loaded and migrations are proven.

Owns the embedded PostgreSQL and its temporary databases (``server``), the
unprivileged loader role (``roles``), kept templates and models
(``cache``), replaying a migration directory (``replay``), and the proof of
a generated pair (``verify`` with ``seed`` rows, ``rowcheck``, and the two
judges that share no code with the engine: ``catalog`` and ``dumpjudge``).

It may use the engine and the one executor (``schemadiff.execute``); it
must not import ``runner``, ``command`` or the CLI's libraries.
"""
