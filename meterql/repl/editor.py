"""The query buffer in the user's editor (``\\e`` and Ctrl-X Ctrl-E): ``$VISUAL``, else
``$EDITOR``, else the first of the usual editors found, as psql and bash choose it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from meterql.errors import ParameterError

_FALLBACKS = ("editor", "nano", "vi")


def editor_command() -> list[str]:
    """The editor to run, as an argument list (``$EDITOR`` may hold options)."""
    for name in ("VISUAL", "EDITOR"):
        value = os.environ.get(name, "").strip()
        if value:
            return shlex.split(value)
    for name in _FALLBACKS:
        found = shutil.which(name)
        if found:
            return [found]
    raise ParameterError("no editor found", hint="set EDITOR, e.g. export EDITOR=nano")


def edit_text(text: str) -> str | None:
    """``text`` after the user edited it in a ``.sql`` file; None when the editor failed
    (a non-zero exit, as psql keeps the buffer then)."""
    command = editor_command()
    with tempfile.TemporaryDirectory(prefix="meterql-edit-") as folder:
        path = Path(folder) / "query.sql"
        path.write_text(text + "\n" if text else "")
        try:
            status = subprocess.call([*command, str(path)])
        except OSError as exc:
            raise ParameterError(f"cannot run the editor '{command[0]}': {exc.strerror}",
                                 hint="set EDITOR to an editor on the PATH") from None
        if status != 0:
            return None
        return path.read_text().rstrip("\n")
