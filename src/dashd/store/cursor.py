"""The part of a DB-API 2.0 cursor the store's database-thread code uses:
sqlite3's and PyMySQL's cursors, and the adbapi Transaction that wraps
either inside `runInteraction`, all fit it."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Protocol, Sequence

# One result row. Its values are whatever the driver gives for the columns
# the query named (int, str, bytes, None, ...): only the query knows, so Any.
Row = tuple[Any, ...]

# Query parameters: values of any column type (see Row), bound in order.
Params = Sequence[Any]


class Cursor(Protocol):
    """A DB-API cursor, `?` or `%s` placeholders as the dialect wants."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, params: Params = ..., /) -> object: ...

    def executemany(self, query: str, params: Iterable[Params], /) -> object: ...

    def fetchone(self) -> Row | None: ...

    # PyMySQL gives a tuple of rows, sqlite3 a list.
    def fetchall(self) -> Sequence[Row]: ...


class SqliteCursor(Cursor, Protocol):
    """What sqlite3's cursor adds, used only when the dialect is SQLite."""

    @property
    def connection(self) -> sqlite3.Connection: ...

    def executescript(self, script: str, /) -> object: ...
