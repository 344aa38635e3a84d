"""How a serving process's cyclic garbage collector runs, and what it costs (``acs_gc_*`` metrics).

A CWMP session allocates thousands of short-lived containers (the parsed envelope, BSON documents,
dicts for the device's update), and nearly all die by reference counting within the request. At
CPython's default thresholds (700, 10, 10) the collector still ran about every 700 surviving
allocations, traversing each generation's live objects: in a 1,000-device boot storm it took 7.7%
of the ACS's CPU, and its full collections, which traverse every tracked object (the imported
modules, the application, the caches), paused the event loop for up to 71 ms, long enough to push a
console request past its 200 ms target (docs/performance.md).

So once a process has started (its modules imported, its application built) it

- freezes what it holds (``gc.freeze``): start-up objects live as long as the process and are no
  longer traversed by any collection;
- raises the first generation's threshold to ``GEN0_THRESHOLD``: by then most of a request's
  objects are gone, so each collection finds little to traverse, and the older generations are
  collected as many times less often; their thresholds go from 10 to 20 collections of the
  generation below (``GEN1_THRESHOLD``, ``GEN2_THRESHOLD``), so full collections are rarer still.

Cycles are still collected: memory held by garbage cycles grows by at most a generation's worth
between collections. ``acs_gc_collections_total`` and ``acs_gc_seconds_total`` (by generation) show
what the collector costs.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from acs.metrics import Metrics

GEN0_THRESHOLD = 20_000
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 20


def tune_collector(metrics: Metrics | None = None) -> None:
    """Freeze what the process holds after start-up, raise the thresholds, and count the
    collector's runs and time in ``metrics``. Call once, when the process is about to serve."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    if metrics is not None:
        gc.callbacks.append(_Timing(metrics))


class _Timing:
    """A ``gc.callbacks`` entry: each collection's count and duration, by generation."""

    def __init__(self, metrics: Metrics) -> None:
        self.collections = metrics.counter("acs_gc_collections_total", "Cyclic garbage collections", ("generation",))
        self.seconds = metrics.counter(
            "acs_gc_seconds_total", "Time spent in cyclic garbage collections (the event loop waits)", ("generation",)
        )
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        generation = str(info.get("generation", ""))
        self.collections.inc(generation=generation)
        self.seconds.inc(time.perf_counter() - self.started, generation=generation)
