"""Start-up check that the state and data directories exist (or can be made) and take writes.

Found here, an unusable directory is one clear message and exit 2; found later by
SQLite or the lock file it would be a traceback in the middle of opening the store.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from interlock.errors import StateDirError


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def check_writable_dir(path: Path, setting: str) -> None:
    """Create ``path`` if missing and prove a file can be made in it, or raise StateDirError.

    ``setting`` (``runtime_settings.state_dir``) is named in the message with what to do.
    """
    fix = (
        f"point {setting} at a directory that user {_user()!r} may write "
        "(the default is /var/lib/interlock), or fix its owner and mode"
    )
    if path.exists() and not path.is_dir():
        raise StateDirError(
            f"{setting} {str(path)!r} exists but is not a directory; move the file away "
            f"or point {setting} at a directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(
            f"{setting} {str(path)!r} cannot be created ({exc.strerror or exc}); {fix}"
        ) from None
    probe = path / f".interlock-write-test-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise StateDirError(
            f"{setting} {str(path)!r} is not writable ({exc.strerror or exc}); {fix}"
        ) from None
    os.close(fd)
    probe.unlink(missing_ok=True)
