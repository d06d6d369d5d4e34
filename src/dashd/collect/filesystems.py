"""File systems: per mount point used bytes, used %, free bytes and inodes
used %, read from the mount table and statvfs (issue 19 item 1).

Pseudo file systems (proc, sysfs, tmpfs, cgroup, overlay ... every type
/proc/filesystems marks `nodev`) are skipped, as are network file systems
(a hung NFS server would hang statvfs). A device mounted twice (bind
mounts) is reported once, at its first mount point. `include` and `exclude`
are shell globs on the mount point; `include` empty means all.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Sequence

from dashd.collect.hostroot import HostPaths, read_text
from dashd.collect.series_names import series
from dashd.collect.sources import SERIES_TOPIC

# Block-device file systems that /proc/filesystems lists as nodev but that
# hold data (psutil makes the same exception for zfs).
DATA_NODEV_TYPES = frozenset({"zfs", "btrfs"})
NETWORK_TYPES = frozenset({"nfs", "nfs4", "cifs", "smbfs", "smb3", "9p", "fuse.sshfs", "ceph", "glusterfs"})


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str


def unescape_mount_field(text: str) -> str:
    # The mount table escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_mounts(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            mounts.append(Mount(unescape_mount_field(parts[0]), unescape_mount_field(parts[1]), parts[2]))
    return mounts


def physical_types(filesystems_text: str) -> frozenset[str]:
    """File system types backed by a device: /proc/filesystems lines without nodev."""
    types = set(DATA_NODEV_TYPES)
    for line in filesystems_text.splitlines():
        parts = line.split()
        if len(parts) == 1:
            types.add(parts[0])
    return frozenset(types - NETWORK_TYPES)


def select_mounts(
    mounts: Sequence[Mount], types: frozenset[str], include: Sequence[str], exclude: Sequence[str]
) -> list[Mount]:
    chosen, devices = [], set()
    for mount in mounts:
        if mount.fstype not in types:
            continue
        if include and not any(fnmatch.fnmatchcase(mount.mountpoint, g) for g in include):
            continue
        if any(fnmatch.fnmatchcase(mount.mountpoint, g) for g in exclude):
            continue
        if mount.device in devices:
            continue
        devices.add(mount.device)
        chosen.append(mount)
    return chosen


class FilesystemSource:
    """Source `filesystems`: `disk_used_percent{mount="/var"}` and the other `disk_*{mount=...}` series."""

    name = "filesystems"
    topic = SERIES_TOPIC

    def __init__(
        self, paths: HostPaths, include: Sequence[str] = (), exclude: Sequence[str] = (), statvfs=os.statvfs
    ) -> None:
        self._paths = paths
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self._statvfs = statvfs

    def mounts(self) -> list[Mount]:
        table = read_text(self._paths.host_proc("mounts")) or read_text(self._paths.proc("mounts")) or ""
        types = physical_types(read_text(self._paths.proc("filesystems")) or "")
        return select_mounts(parse_mounts(table), types, self._include, self._exclude)

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for mount in self.mounts():
            try:
                st = self._statvfs(self._paths.on_host(mount.mountpoint))
            except OSError:
                continue  # unmounted between reading the table and statvfs
            values.update(filesystem_values(mount, st))
        return values


def filesystem_values(mount: Mount, st: os.statvfs_result) -> dict[str, float]:
    """The series of one mount, computed as df does: used = total - free,
    used % = used / (used + available to unprivileged users)."""
    total = st.f_blocks * st.f_frsize
    free = st.f_bfree * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = total - free
    labels = {"mount": mount.mountpoint, "fstype": mount.fstype}
    out = {
        series("disk_size_bytes", **labels): float(total),
        series("disk_used_bytes", **labels): float(used),
        series("disk_free_bytes", **labels): float(avail),
        series("disk_used_percent", **labels): round(100.0 * used / (used + avail), 2) if used + avail else 0.0,
    }
    if st.f_files:
        inodes_used = st.f_files - st.f_ffree
        out[series("disk_inodes_used_percent", **labels)] = round(100.0 * inodes_used / st.f_files, 2)
    return out
