"""Secrets Eventdesk makes for itself on first use and keeps under ``.data/``.

The Django secret key (when ``DJANGO_SECRET_KEY`` is unset) and the operator's
password are each generated once and kept in a file of mode 0600. The console,
the worker and two test suites may all start at the same moment, so the file is
created atomically: every process writes its candidate to a private temporary
file, then hard-links it into place. ``link`` fails if the name exists, so exactly
one candidate wins, and a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class SecretFileError(RuntimeError):
    """A secret file exists but cannot be used (empty, say): it needs a person's look."""


def read_or_create(path: Path, generate: Callable[[], str]) -> str:
    """The secret kept in ``path``; on first use, ``generate()`` written there (mode 0600).

    Safe against concurrent first use by any number of threads and processes: all
    of them return the same secret, the one whose file was linked into place first.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate()
    if not secret or "\n" in secret:
        raise ValueError("a generated secret must be one non-empty line")
    # mkstemp opens with O_CREAT | O_EXCL and mode 0600, whatever the umask.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as candidate:
            candidate.write(secret + "\n")
            candidate.flush()
            os.fsync(candidate.fileno())
        # The atomic step: link() refuses to replace an existing name (rename would
        # silently replace a winner that another process has already handed out).
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read(path)


def _read(path: Path) -> str:
    secret = path.read_text().strip()
    if not secret:
        raise SecretFileError(f"{path} is empty; remove it to have a new one made")
    return secret
