"""The diff engine: two schema models in, an ordered list of changes out.

Owns the schema model (``model``), comparison per object kind (``diff`` and
its ``tables``, ``usertypes``, ``objects``, ``privileges``), the order
statements run in (``order``), what each statement risks (``hazards``,
``typechange``), how names and definitions are written as SQL (``ddl``) and
a rename map applied to a model as PostgreSQL renames (``renames``: rename
hints enter the differ through it).

Pure computation: nothing here connects to a server, starts a process or
reads the migration directory. It must not import psycopg, ``dburl``,
``inspect`` (which reads a live catalog into the model), ``shadow``,
``runner``, ``command`` or the CLI's libraries; tests/test_layout.py checks.
"""
