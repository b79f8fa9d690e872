"""The environment of a program under test in a pseudo-terminal (pexpect).

A pexpect terminal never answers prompt_toolkit's cursor-position request, so without
``PROMPT_TOOLKIT_NO_CPR`` every prompt waits out prompt_toolkit's one-second timeout for the
answer: a second per command, minutes over the REPL tests. A real terminal answers at once.
"""

from __future__ import annotations

from pathlib import Path


def terminal_env(home: Path, **extra: str) -> dict[str, str]:
    """An xterm with a bare PATH and ``HOME`` at *home*, plus *extra* variables."""
    return {"TERM": "xterm", "PATH": "/usr/bin:/bin", "HOME": str(home),
            "PROMPT_TOOLKIT_NO_CPR": "1", **extra}
