"""Series selectors in client requests (subscribe, history, stats, and the
HTTP history and export): checking them, and resolving them to the series
a query reads. The matching itself is dashd.stream.selection."""

from __future__ import annotations

from typing import Any, Iterable

from dashd.clients.seams import MetricCatalogue
from dashd.errors import ProtocolError
from dashd.stream.selection import SelectorError, check_selectors, select, unknown_selectors


def _bad(message: str, **details: Any) -> ProtocolError:
    return ProtocolError("bad_message", message, details or None)


def known_series(catalogue: MetricCatalogue, host: str | None = None) -> list[str]:
    """What a request may name: the live catalogue, plus the series the
    store holds for `host` (history reaches series the stream no longer carries)."""
    names = dict.fromkeys(catalogue.names())
    if host is not None:
        names.update(dict.fromkeys(catalogue.stored_names(host)))
    return list(names)


def check_metric_selectors(
    catalogue: MetricCatalogue, patterns: Iterable[str], request: str, host: str | None = None
) -> list[str]:
    """The known series (see known_series); ProtocolError `bad_message` for a
    malformed selector (details: selector, reason) or one that selects no
    known metric (details: known)."""
    patterns = list(patterns)
    try:
        check_selectors(patterns)
    except SelectorError as e:
        raise _bad(
            f"{request}: invalid selector {e.selector[:64]!r}: {e}", selector=e.selector, reason=str(e)
        ) from None
    known = known_series(catalogue, host)
    unknown = unknown_selectors(patterns, known)
    if unknown:
        raise _bad(f"{request}: unknown metric(s) {', '.join(repr(u[:64]) for u in unknown[:10])}", known=known)
    return known


def resolve_selectors(catalogue: MetricCatalogue, patterns: Iterable[str], request: str, host: str) -> list[str]:
    """The series of `host` the selectors name (checked as above)."""
    patterns = list(patterns)
    return select(patterns, check_metric_selectors(catalogue, patterns, request, host))
