"""The workspace is private to its owner: folders 0700, files 0600.

``catalog.duckdb`` holds source URIs (a password written in one), ``local.duckdb`` and the
replicas hold billing data. Files are made private where meterql creates or opens them, without
touching the process's umask (a library must not): :func:`private_file` after DuckDB created a
file, and on Linux a default ACL on the workspace folder (owner only, inherited by folders
made inside it) so that the files DuckDB creates on its own later, write-ahead logs and spill
files, are 0600 from the start. Where the file system has no ACLs those keep the umask's mode,
inside a folder no one else may enter.

Example:
    >>> import os, stat, tempfile
    >>> home = private_folder(os.path.join(tempfile.mkdtemp(), "ws"))
    >>> oct(stat.S_IMODE(os.stat(home).st_mode))
    '0o700'
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

FOLDER, FILE = 0o700, 0o600

#: What meterql keeps in a workspace folder (older versions made these with the umask's modes;
#: :func:`private_workspace` fixes them). Anything else in the folder is left alone.
_OWN_NAMES = (".lock", "catalog.duckdb", "local.duckdb", "events.", "replicas", "demo_data")

# A POSIX ACL as Linux stores it in the system.posix_acl_default attribute: version 2, then
# (tag, permissions, id) entries. Owner rwx, group and others nothing: a file created with mode
# 0666 gets 0600, a folder 0700, whatever the umask.
_OWNER_ONLY_ACL = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in ((0x01, 7), (0x04, 0), (0x20, 0)))


def private_folder(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and its parents) if needed; make it 0700, and on Linux give it an
    owner-only default ACL. Returns it as a Path."""
    folder = Path(path)
    folder.mkdir(mode=FOLDER, parents=True, exist_ok=True)
    os.chmod(folder, FOLDER)
    setxattr = getattr(os, "setxattr", None)
    if setxattr is not None:
        # (not every file system has ACLs: tmpfs without them, some network file systems)
        with contextlib.suppress(OSError):
            setxattr(folder, "system.posix_acl_default", _OWNER_ONLY_ACL)
    return folder


def private_file(path: str | os.PathLike[str]) -> None:
    """Make an existing file 0600 (a missing one is not an error)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, FILE)


def private_opener(path: str, flags: int) -> int:
    """For ``open(..., opener=private_opener)``: a file created 0600."""
    return os.open(path, flags, FILE)


def private_workspace(home: Path) -> None:
    """Make everything meterql keeps in ``home`` private (files 0600, folders 0700)."""
    private_folder(home)
    for entry in home.iterdir():
        if not entry.name.startswith(_OWN_NAMES) or entry.is_symlink():
            continue
        if entry.is_dir():
            for root, _, files in os.walk(entry):
                private_folder(root)
                for name in files:
                    private_file(os.path.join(root, name))
        else:
            private_file(entry)
