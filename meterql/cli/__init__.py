"""The command line: ``meterql source add``, ``meterql query``, ``meterql explain``, ...

Every command takes ``--home`` (default ``$METERQL_HOME`` or ``./meterql_home``) and calls the
same :class:`~meterql.workspace.Workspace` methods as the Python API. Errors print one line (and
the SQL with a caret for parse errors) on stderr and exit with status 1.

One module per command group (``sources``, ``sync``, ``query``, ...), their shared helpers in
``common``, and the ``meterql`` group that holds them in ``root``.
"""

from meterql.cli.root import main

__all__ = ["main"]
