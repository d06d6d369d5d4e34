"""Labelled series names: the one value type every collector, the store's
series registry and the protocol key series on.

A series is a family plus labels, written in the canonical text form

    family{label="value",other="value"}

with labels sorted by name and values escaped as Prometheus escapes them
(backslash, double quote, newline). A series without labels is just its
family (`cpu_usage`), so the seed's metric names are series names as they
are. Because the text form is canonical, two equal series always have equal
strings: the string can be used as a dictionary key or a database key.

Selectors (subscriptions, history queries) are a family glob plus label
matchers: `disk_used_percent{mount="/"}`, `net_*{iface!="lo"}`,
`cgroup_cpu_percent{unit=~"nginx.*"}`, `disk_*{device=*"sd*"}`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

FAMILY_PATTERN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_PATTERN = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_FAMILY_GLOB = re.compile(r"[a-zA-Z0-9_:*?\[\]!-]+\Z")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
MAX_NAME_LENGTH = 1024


class SeriesNameError(ValueError):
    """A series name or selector is malformed; str() says where and why."""


def escape_label_value(value: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


@dataclass(frozen=True, order=True)
class SeriesName:
    """One series: a family and its labels, sorted by label name."""

    family: str
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not FAMILY_PATTERN.match(self.family):
            raise SeriesNameError(f"invalid family name {self.family!r}")
        names = [name for name, _ in self.labels]
        if names != sorted(names) or len(set(names)) != len(names):
            raise SeriesNameError(f"labels of {self.family} must be sorted and unique: {names}")
        for name, value in self.labels:
            if not LABEL_PATTERN.match(name):
                raise SeriesNameError(f"invalid label name {name!r}")
            if not isinstance(value, str):
                raise SeriesNameError(f"label {name} of {self.family} must be a string")

    @classmethod
    def of(cls, family: str, labels: Mapping[str, str] | None = None, **more: str) -> SeriesName:
        merged = dict(labels or {}, **more)
        return cls(family, tuple(sorted((k, str(v)) for k, v in merged.items())))

    @classmethod
    def parse(cls, text: str) -> SeriesName:
        """The inverse of str(): only `=` matchers, no globs."""
        family, matchers = _parse(text, allow_globs=False)
        for matcher in matchers:
            if matcher.op != "=":
                raise SeriesNameError(f'{text!r}: a series name takes label="value" only, not {matcher.op}')
        labels = {m.label: m.value for m in matchers}
        if len(labels) != len(matchers):
            raise SeriesNameError(f"{text!r}: a label is given twice")
        return cls.of(family, labels)

    def label(self, name: str) -> str | None:
        for key, value in self.labels:
            if key == name:
                return value
        return None

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def __str__(self) -> str:
        if not self.labels:
            return self.family
        inner = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in self.labels)
        return f"{self.family}{{{inner}}}"


def series(family: str, **labels: str) -> str:
    """The canonical text of a series: `series("disk_used_percent", mount="/")`."""
    return str(SeriesName.of(family, labels))


def parse_series(text: str) -> SeriesName:
    return SeriesName.parse(text)


@dataclass(frozen=True)
class LabelMatcher:
    """One `label op "value"` term. Ops: = != (exact), =~ !~ (regular
    expression, anchored as Prometheus anchors it), =* !* (shell glob)."""

    label: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_regex", re.compile(f"(?:{self.value})\\Z"))
            except re.error as e:
                raise SeriesNameError(f"label {self.label}: invalid regular expression {self.value!r} ({e})") from None

    def matches(self, value: str | None) -> bool:
        # An absent label matches as the empty string, as in Prometheus.
        value = "" if value is None else value
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        if self.op == "=~":
            return self._regex.match(value) is not None  # type: ignore[attr-defined]
        if self.op == "!~":
            return self._regex.match(value) is None  # type: ignore[attr-defined]
        if self.op == "=*":
            return fnmatch.fnmatchcase(value, self.value)
        return not fnmatch.fnmatchcase(value, self.value)  # "!*"

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{escape_label_value(self.value)}"'


@dataclass(frozen=True)
class SeriesSelector:
    """A family glob (`disk_*`, `*`) and label matchers, all of which must hold."""

    family: str
    matchers: tuple[LabelMatcher, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SeriesSelector:
        family, matchers = _parse(text, allow_globs=True)
        return cls(family, tuple(matchers))

    def matches(self, name: SeriesName | str) -> bool:
        if isinstance(name, str):
            name = SeriesName.parse(name)
        if not fnmatch.fnmatchcase(name.family, self.family):
            return False
        labels = name.label_dict
        return all(m.matches(labels.get(m.label)) for m in self.matchers)

    def select(self, names: Iterable[SeriesName | str]) -> list:
        return [name for name in names if self.matches(name)]

    def __str__(self) -> str:
        if not self.matchers:
            return self.family
        return f"{self.family}{{{','.join(str(m) for m in self.matchers)}}}"


_OPS = ("=~", "!~", "=*", "!*", "!=", "=")


def _parse(text: str, allow_globs: bool) -> tuple[str, list[LabelMatcher]]:
    if not isinstance(text, str) or not text:
        raise SeriesNameError("a series name must be a non-empty string")
    if len(text) > MAX_NAME_LENGTH:
        raise SeriesNameError(f"a series name is at most {MAX_NAME_LENGTH} characters")
    brace = text.find("{")
    family = text if brace < 0 else text[:brace]
    pattern = _FAMILY_GLOB if allow_globs else FAMILY_PATTERN
    if not pattern.match(family):
        raise SeriesNameError(f"{text!r}: invalid family name {family!r}")
    if brace < 0:
        return family, []
    if not text.endswith("}"):
        raise SeriesNameError(f"{text!r}: labels must end with '}}'")
    return family, _parse_matchers(text, brace + 1, len(text) - 1, allow_globs)


def _parse_matchers(text: str, pos: int, end: int, allow_globs: bool) -> list[LabelMatcher]:
    matchers: list[LabelMatcher] = []
    while pos < end:
        match = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*").match(text, pos, end)
        if not match:
            raise SeriesNameError(f"{text!r}: expected a label name at offset {pos}")
        label, pos = match.group(1), match.end()
        op = next((candidate for candidate in _OPS if text.startswith(candidate, pos)), None)
        if op is None:
            raise SeriesNameError(f"{text!r}: expected =, !=, =~, !~, =* or !* after {label}")
        if op != "=" and not allow_globs:
            raise SeriesNameError(f'{text!r}: a series name takes label="value" only')
        pos += len(op)
        while pos < end and text[pos] == " ":
            pos += 1
        value, pos = _quoted(text, pos, end)
        matchers.append(LabelMatcher(label, op, value))
        while pos < end and text[pos] == " ":
            pos += 1
        if pos < end:
            if text[pos] != ",":
                raise SeriesNameError(f"{text!r}: expected ',' at offset {pos}")
            pos += 1
    return matchers


def _quoted(text: str, pos: int, end: int) -> tuple[str, int]:
    if pos >= end or text[pos] != '"':
        raise SeriesNameError(f"{text!r}: label values are double-quoted (offset {pos})")
    pos += 1
    out: list[str] = []
    while pos < end:
        ch = text[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\\":
            if pos + 1 >= end or text[pos + 1] not in _UNESCAPES:
                raise SeriesNameError(f"{text!r}: invalid escape at offset {pos}")
            out.append(_UNESCAPES[text[pos + 1]])
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise SeriesNameError(f"{text!r}: unterminated label value")
