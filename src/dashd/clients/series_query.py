"""Series selectors in client requests (subscribe, history, stats, and the
HTTP history and export): checking them, and resolving them to the series
a query reads. The matching itself is dashd.stream.selection."""

from __future__ import annotations

from typing import Any, Iterable

from dashd.errors import ProtocolError
from dashd.stream.selection import SelectorError, check_selectors, select, unknown_selectors


def _bad(message: str, **details: Any) -> ProtocolError:
    return ProtocolError("bad_message", message, details or None)


def stored_series(store: Any, host: str) -> list[str]:
    """The series names the store holds for `host` (its series registry),
    so history reaches series the live stream no longer carries."""
    registry = getattr(store, "registry", None)
    if registry is None:
        return []
    return [info.key for info in registry.all() if info.host == host]


def known_series(core: Any, host: str | None = None) -> list[str]:
    """What a request may name: the live catalogue, plus `host`'s stored series."""
    names = dict.fromkeys(core.catalogue)
    if host is not None:
        names.update(dict.fromkeys(stored_series(core.store, host)))
    return list(names)


def check_metric_selectors(core: Any, patterns: Iterable[str], request: str, host: str | None = None) -> list[str]:
    """The known series (see known_series); ProtocolError `bad_message` for a
    malformed selector (details: selector, reason) or one that selects no
    known metric (details: known)."""
    patterns = list(patterns)
    try:
        check_selectors(patterns)
    except SelectorError as e:
        raise _bad(f"{request}: invalid selector {e.selector[:64]!r}: {e}", selector=e.selector,
                   reason=str(e)) from None
    known = known_series(core, host)
    unknown = unknown_selectors(patterns, known)
    if unknown:
        raise _bad(f"{request}: unknown metric(s) {', '.join(repr(u[:64]) for u in unknown[:10])}", known=known)
    return known


def resolve_selectors(core: Any, patterns: Iterable[str], request: str, host: str) -> list[str]:
    """The series of `host` the selectors name (checked as above)."""
    patterns = list(patterns)
    return select(patterns, check_metric_selectors(core, patterns, request, host))


def catalogue_families(core: Any) -> list[dict]:
    """The `families` of the catalogue: every non-seed family the stream
    carried, with its unit, kind, description and current label values."""
    return core.hub.series.families(exclude=[info.name for info in core.catalogue_info])
