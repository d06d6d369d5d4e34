"""Which series a client selects: the patterns of `subscribe`, `history`,
`stats`, /api/history and /api/export, as series selectors
(dashd.collect.series_names): a name (`cpu_usage`), a glob (`cpu_core_*`,
`*`), or a family glob with label matchers (`disk_used_percent{mount="/"}`,
`net_*{iface!="lo"}`, `cgroup_cpu_percent{unit=~"nginx.*"}`).

A selector without labels matches every series of the families its glob
matches, labelled or not, so `*` is everything and `net_*` is every
interface. Names that are not `family{labels}` (whatever an agent sends)
are matched by shell glob on the whole name, as before labels existed.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import Iterable

from dashd.collect.families import FAMILY_BY_NAME
from dashd.collect.series_names import SeriesName, SeriesNameError, SeriesSelector


class SelectorError(ValueError):
    """A pattern is not a valid selector; `selector` is the pattern, str() says why."""

    def __init__(self, selector: str, reason: str) -> None:
        super().__init__(reason)
        self.selector = selector


@lru_cache(maxsize=65_536)
def parsed_series(name: str) -> SeriesName | None:
    """The parsed form of a series name, or None for a name that is not one."""
    try:
        return SeriesName.parse(name)
    except SeriesNameError:
        return None


@lru_cache(maxsize=4096)
def _selector(pattern: str) -> SeriesSelector | None:
    try:
        return SeriesSelector.parse(pattern)
    except SeriesNameError:
        return None


def check_selectors(patterns: Iterable[str]) -> None:
    """Raise SelectorError for the first pattern that is not a selector."""
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise SelectorError(str(pattern), "a selector is a string")
        try:
            SeriesSelector.parse(pattern)
        except SeriesNameError as e:
            raise SelectorError(pattern, str(e)) from None


def selector_matches(pattern: str, name: str) -> bool:
    """Whether `pattern` selects the series `name`."""
    if pattern == "*" or pattern == name:
        return True
    selector = _selector(pattern)
    parsed = parsed_series(name)
    if selector is None or parsed is None:
        return fnmatch.fnmatchcase(name, pattern)
    return selector.matches(parsed)


def select(patterns: Iterable[str], names: Iterable[str]) -> list[str]:
    """The names any pattern selects, in the order of `names`."""
    patterns = tuple(patterns)
    return [name for name in names if any(selector_matches(p, name) for p in patterns)]


def family_pattern(pattern: str) -> str:
    """The family glob of a selector (`net_*` of `net_*{iface!="lo"}`)."""
    selector = _selector(pattern)
    return selector.family if selector is not None else pattern


def unknown_selectors(patterns: Iterable[str], known: Iterable[str]) -> list[str]:
    """The patterns that select nothing known. Besides the known names, a
    selector is known when its family glob matches a collector family
    (dashd.collect.families: series that come and go with the host, such as
    a sensor or a mount, may be subscribed to before they appear), or, with
    label matchers, the family of a known name."""
    known = tuple(known)
    families = {name[: name.find("{")] if "{" in name else name for name in known}
    unknown = []
    for pattern in patterns:
        if any(selector_matches(pattern, name) for name in known):
            continue
        selector = _selector(pattern)
        if selector is not None and (
            any(fnmatch.fnmatchcase(family, selector.family) for family in FAMILY_BY_NAME)
            or (selector.matchers and any(fnmatch.fnmatchcase(family, selector.family) for family in families))
        ):
            continue
        unknown.append(pattern)
    return unknown


def split_selectors(text: str) -> list[str]:
    """A comma-separated list of selectors (a query string's `metrics`),
    split on the commas outside braces and quoted label values:
    `cpu_usage,disk_used_percent{mount="/",fstype="ext4"}` is two."""
    parts: list[str] = []
    depth, quoted, escaped, start = 0, False, False, 0
    for index, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part for part in parts if part]
