"""State on disk readable by this user only, whatever the umask: the state
directory 0700, database files 0600 (a shell's umask 022 would make them
0755/0644, readable by every local user: password hashes, sessions)."""

from __future__ import annotations

import os
import stat

from twisted.logger import Logger

log = Logger()


def private_directory(path: str) -> None:
    """Create `path` 0700, or tighten it to 0700 when it is ours and looser."""
    os.makedirs(path, mode=0o700, exist_ok=True)  # mode is masked by the umask: chmod below
    info = os.stat(path)
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
        os.chmod(path, 0o700)
        log.info("made {path} private (mode 0700; it was {mode:o})", path=path, mode=stat.S_IMODE(info.st_mode))


def private_file(path: str) -> None:
    """Create `path` empty with mode 0600 if missing; tighten it if ours. SQLite
    gives its -wal and -shm files the database file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    for candidate in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            info = os.stat(candidate)
        except FileNotFoundError:
            continue
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
            os.chmod(candidate, 0o600)


def warn_if_shared(path: str, what: str) -> bool:
    """Log a warning when the secret file `path` is readable or writable by
    group or others (as for the signing key); True when it was."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return False
    if not mode & 0o077:
        return False
    log.warn("{what} {path} is readable by others (mode {mode:o}); chmod 600 it", what=what, path=path, mode=mode)
    return True
