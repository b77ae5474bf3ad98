"""The data directory must be writable before anything else starts.

Without this check a directory the process cannot write (a bind mount owned by another uid,
a read-only volume) ends in a traceback from whichever component writes first (the secret key,
SQLite, the outbox); the operator needs one line naming the directory, the uid and the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class DataDirError(Exception):
    """The data directory cannot be used; the message says how to fix it."""


def ensure_writable(path: Path) -> None:
    """Create the directory (private to this user) if missing and prove a file can be written."""
    uid, gid = os.getuid(), os.getgid()
    fix = (f"make it writable by uid {uid} ('chown -R {uid}:{gid} DIR' on the directory mounted "
           "there, if it is a bind mount) or set [service] data_dir")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DataDirError(
            f"the data directory {path} is not writable by this process (uid {uid}): {reason}; "
            f"{fix}") from None
