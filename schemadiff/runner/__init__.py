"""The runner: golang-migrate's contract against a target database.

Owns applying, reverting, ``status`` and ``force`` (``apply``), the version
table and our history table (``versiontable``), golang-migrate's advisory
lock (``lock``), the drift check against the schema a file was proven from
(``drift``), backups before a data-deleting step (``backup``) and writing
generated pairs with their ``schemadiff.sum`` entries (``writer``). The
directory itself is read by ``schemadiff.migrations``; files run through the
one executor, ``schemadiff.execute``.

It must not import ``command`` or the CLI's libraries.
"""
