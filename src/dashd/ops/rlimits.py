"""The open-files limit, raised at start (as magic-wormhole-mailbox-server's
`increase_rlimits` does): every client holds a socket, and a shell's default
soft limit of 1024 is reached by a thousand idle connections, after which
accept(), the store and the log all fail with "Too many open files"."""

from __future__ import annotations

import resource
from typing import Callable

from twisted.logger import Logger

log = Logger()

# Asked for when the hard limit is unlimited (or huge): plenty for
# max_connections' default of 20,000 with room for everything else.
TARGET_OPEN_FILES = 65_536


def raise_open_files_limit(
    target: int = TARGET_OPEN_FILES,
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> int:
    """Raise the soft RLIMIT_NOFILE towards `target` (never above the hard
    limit, never lowering it); returns the soft limit in force afterwards."""
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as e:
            log.warn(
                "could not raise the open-files limit from {soft} to {wanted}: {error}",
                soft=soft,
                wanted=wanted,
                error=e,
            )
            return soft
        log.info("raised the open-files limit from {soft} to {wanted}", soft=soft, wanted=wanted)
        return wanted
    return soft
