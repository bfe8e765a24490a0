"""schemadiff: declarative PostgreSQL schema management.

The core library (config, desired state, shadow server, diff, hazards,
migration directory, runner) lives in plain modules; ``schemadiff.command``
holds the typed functions the CLI calls, and ``schemadiff.cli`` only parses
arguments and renders results.
"""

__version__ = "0.1.0"
