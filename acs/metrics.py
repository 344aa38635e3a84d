"""A tiny in-process metrics registry rendered in the Prometheus text format (version 0.0.4).

One :class:`Metrics` per process (held by ``Services``); any module may register a counter or a
gauge once and increment it. With ``--workers N`` each worker exposes its own numbers, as
Prometheus expects of a multi-process target scraped per worker (or summed by the scraper).

    requests = metrics.counter("acs_api_requests_total", "API requests", ("route", "status"))
    requests.inc(route="/api/v1/devices", status="200")
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help_text = help_text
        self.labels = labels
        self._values: dict[LabelValues, float] = {}

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(labels)}")
        return tuple(str(labels[name]) for name in self.labels)

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[tuple[LabelValues, float]]:
        return sorted(self._values.items())

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape(self.help_text)}", f"# TYPE {self.name} {self.kind}"]
        for values, number in self.samples():
            label_text = ",".join(f'{name}="{_escape(value)}"' for name, value in zip(self.labels, values, strict=True))
            lines.append(f"{self.name}{{{label_text}}} {_number(number)}" if label_text else
                         f"{self.name} {_number(number)}")
        return lines


class Counter(_Family):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Family):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...],
                 read: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, labels)
        self._readers: dict[LabelValues, Callable[[], float]] = {}
        if read is not None:
            self.track(read)  # an unlabelled gauge read when scraped

    def track(self, read: Callable[[], float], **labels: str) -> None:
        """The value of these labels is ``read()`` when scraped (a count kept elsewhere, which the
        hot path then need not copy here on every change)."""
        self._readers[self._key(labels)] = read

    def set(self, value: float, **labels: str) -> None:
        self._values[self._key(labels)] = value

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: str) -> float:
        key = self._key(labels)
        read = self._readers.get(key)
        return float(read()) if read is not None else self._values.get(key, 0.0)

    def samples(self) -> list[tuple[LabelValues, float]]:
        if not self._readers:
            return super().samples()
        return sorted({**self._values, **{key: float(read()) for key, read in self._readers.items()}}.items())


class Metrics:
    """The families of one process, in registration order."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._families: dict[str, _Family] = {}
        started = clock()
        self.gauge("process_uptime_seconds", "Seconds since this ACS process started",
                   read=lambda: round(clock() - started, 3))

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        family = self._families.setdefault(name, Counter(name, help_text, labels))
        if not isinstance(family, Counter) or family.labels != labels:
            raise ValueError(f"metric {name} already registered differently")
        return family

    def gauge(self, name: str, help_text: str, labels: tuple[str, ...] = (),
              read: Callable[[], float] | None = None) -> Gauge:
        family = self._families.setdefault(name, Gauge(name, help_text, labels, read))
        if not isinstance(family, Gauge) or family.labels != labels:
            raise ValueError(f"metric {name} already registered differently")
        return family

    def render(self) -> str:
        lines: list[str] = []
        for family in self._families.values():
            lines += family.render()
        return "\n".join(lines) + "\n"
