"""The spill file (part of the store layer): rows the store could not write
before shutdown because the database was down, kept on local disk and
written to the database first at the next start.

One JSON document, written to a temporary file in the same directory,
fsync'd, then renamed over the old one (and the directory fsync'd), so a
crash leaves either the previous spill or the new one, never half of one.
It holds at most `max_rows` sample rows (the newest; the in-memory queue has
the same bound), plus the notifications and acknowledgements, which are few.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

Row = tuple[Any, ...]  # one queued row, as the store's write batch holds it

FORMAT = "dashd-spill"
VERSION = 1


@dataclass(frozen=True)
class SpilledRows:
    """What a spill file holds, as the store's queue rows (tuples)."""

    samples: list[Row]
    notifications: list[Row]
    acks: list[Row]

    @property
    def rows(self) -> int:
        return len(self.samples) + len(self.notifications) + len(self.acks)


class SpillFile:
    """Atomic write, read and removal of the spill file at `path`."""

    def __init__(self, path: str, max_rows: int) -> None:
        self.path = path
        self.max_rows = max_rows

    def write(self, samples: Sequence[Row], notifications: Sequence[Row], acks: Sequence[Row]) -> int:
        """Replace the spill file with these rows; returns how many it holds.
        (Rows read from an older spill are still in the queue, so they are
        part of these.)"""
        kept = list(samples)[-self.max_rows :]
        document: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "samples": kept,
            "notifications": list(notifications),
            "acks": list(acks),
        }
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        temporary = f"{self.path}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(document, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        _fsync_directory(directory)
        return len(kept) + len(document["notifications"]) + len(document["acks"])

    def read(self) -> SpilledRows | None:
        """The spilled rows, or None when there is no spill file.
        ValueError for a file that is not one of ours."""
        try:
            with open(self.path, encoding="utf-8") as f:
                document = json.load(f)
        except FileNotFoundError:
            return None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError("not a dashd spill file")
        if document.get("version") != VERSION:
            raise ValueError(f"spill file version {document.get('version')!r}, this dashd reads {VERSION}")
        try:
            return SpilledRows(
                samples=[tuple(row) for row in document["samples"]][-self.max_rows :],
                notifications=[tuple(row) for row in document["notifications"]],
                acks=[tuple(row) for row in document["acks"]],
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed spill file ({e})") from None

    def remove(self) -> None:
        """Forget the spill (its rows are in the database)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        _fsync_directory(os.path.dirname(os.path.abspath(self.path)))


def _fsync_directory(directory: str) -> None:
    """Make a rename or unlink durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
