"""Where the host's /proc and /sys are: `/` normally, or a host root such as
`/host` when dashd runs in a container with the host's /proc and /sys
mounted read-only under it (issue 19 item 6; docs/operations.md).

Every reader in dashd.collect takes a HostPaths instead of naming /proc or
/sys itself, and psutil follows through `psutil.PROCFS_PATH`.

Under a host root, files that are per network namespace or per process
(`net/dev`, `net/tcp`, `mounts`) are read through `proc/1/`, the host's
init, rather than `proc/self/` (which would be dashd's own container view).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class HostPaths:
    """Paths of one host's kernel interfaces. `root` is "/" for this host."""

    root: str = "/"

    @property
    def under_host_root(self) -> bool:
        return os.path.normpath(self.root) != "/"

    def proc(self, *parts: str) -> str:
        return os.path.join(self.root, "proc", *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.root, "sys", *parts)

    def host_proc(self, *parts: str) -> str:
        """A per-namespace /proc file as the host sees it: proc/1/... under
        a host root (pid: host makes pid 1 the host's init), proc/self/...
        otherwise."""
        return self.proc("1" if self.under_host_root else "self", *parts)

    def on_host(self, path: str) -> str:
        """A path of the host's file system (a mount point) as dashd can reach it."""
        if not self.under_host_root:
            return path
        return os.path.join(self.root, path.lstrip("/"))

    @property
    def cgroup_root(self) -> str:
        return self.sys("fs", "cgroup")


def host_paths(host_root: str) -> HostPaths:
    """The HostPaths for the `host_root` setting ("" means this host)."""
    return HostPaths(host_root or "/")


def point_psutil_at(paths: HostPaths) -> None:
    """Make psutil read the host's /proc (process table, CPU, memory).

    psutil keeps this in one module global, so it is set once, by makeService,
    before any collector starts."""
    psutil.PROCFS_PATH = paths.proc()


def read_text(path: str) -> str | None:
    """A small kernel file's text, or None if it does not exist or cannot be
    read (absent hardware, a controller not mounted, a process gone)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def read_int(path: str) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip().split()[0])
    except (ValueError, IndexError):
        return None
