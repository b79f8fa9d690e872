"""Long text through the user's pager, as psql does: ``$PAGER`` (``less``, else ``more``, when it
is unset), only on a terminal and only when the text is taller or wider than the terminal;
``PAGER=`` (set empty) turns paging off.

``less`` runs with ``LESS=FRSX`` unless ``$LESS`` is set (as git does): styles pass through
(``-R``), a line wider than the terminal scrolls sideways instead of wrapping (``-S``: nothing is
cut, the arrow keys show the rest), the text stays on the screen after ``q`` (``-X``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO


def pager_command(environ: Mapping[str, str] | None = None) -> str | None:
    """The pager to run (a shell command), or None for none: ``$PAGER`` when it is set (set
    empty: none), else ``less`` or ``more`` when installed.

    Example:
        >>> pager_command({"PAGER": "less -S"}), pager_command({"PAGER": ""})
        ('less -S', None)
    """
    env = os.environ if environ is None else environ
    value = env.get("PAGER")
    if value is None:
        return next((name for name in ("less", "more") if shutil.which(name)), None)
    return value.strip() or None


def show_text(chunks: Iterable[str], *, width: int, height: int, out: TextIO | None = None,
              pager: bool = True) -> bool:
    """Write ``chunks`` (text ``width`` cells wide and ``height`` lines tall) to ``out``
    (standard output), or through the pager when ``pager`` is on, ``out`` is a terminal, a
    pager is set (:func:`pager_command`) and the text does not fit the terminal. Returns
    whether the pager showed it."""
    out = sys.stdout if out is None else out
    command = pager_command() if pager and out.isatty() else None
    if command is not None:
        size = shutil.get_terminal_size()
        if height >= size.lines or width > size.columns:
            out.flush()
            page(chunks, command, encoding=out.encoding or "utf-8")
            return True
    for chunk in chunks:
        out.write(chunk)
    out.flush()
    return False


def page(chunks: Iterable[str], command: str, *, encoding: str = "utf-8") -> None:
    """Run ``command`` (through the shell, as psql and git run ``$PAGER``) with ``chunks`` on
    its standard input and wait for it to end. Leaving the pager early (``q``) stops the writing;
    Ctrl-C belongs to the pager while it runs."""
    env = dict(os.environ)
    env.setdefault("LESS", "FRSX")
    proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    with _ignoring_ctrl_c():
        try:
            for chunk in chunks:
                proc.stdin.write(chunk.encode(encoding, errors="replace"))
            proc.stdin.close()
        except (BrokenPipeError, OSError):  # the pager was left before the end
            with contextlib.suppress(OSError):
                proc.stdin.close()
        proc.wait()


@contextlib.contextmanager
def _ignoring_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
