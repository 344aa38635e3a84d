"""The cyclic garbage collector of a serving process (``acs/gcpolicy.py``): start-up objects frozen,
the first threshold raised, and its cost counted in the metrics."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import aiohttp
import pytest

from acs.gcpolicy import GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD, tune_collector
from acs.metrics import Metrics
from tests.conftest import AcsServeFactory


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, afterwards."""
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def test_a_tuned_process_freezes_what_it_holds_and_counts_each_collection(collector: None) -> None:
    metrics = Metrics()
    tune_collector(metrics)
    assert gc.get_freeze_count() > 0, "start-up objects are frozen: no collection traverses them"
    assert gc.get_threshold() == (GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    gc.collect(0)
    gc.collect(2)
    rendered = metrics.render()
    assert 'acs_gc_collections_total{generation="0"} 1' in rendered
    assert 'acs_gc_collections_total{generation="2"} 1' in rendered
    seconds = metrics.counter("acs_gc_seconds_total", "", ("generation",))
    assert seconds.value(generation="2") > 0


async def test_acs_serve_reports_its_collector(acs_serve: AcsServeFactory) -> None:
    proc = await acs_serve()
    async with aiohttp.ClientSession() as http, http.get(proc.api_url + "/metrics") as response:
        text = await response.text()
    assert "# TYPE acs_gc_collections_total counter" in text
    assert "# TYPE acs_gc_seconds_total counter" in text
