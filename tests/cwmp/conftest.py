"""Shared fixtures for the cwmp tests: where ../shared is and how to read the device captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cwmp.xsd import shared_dir

SAMPLES = shared_dir() / "samples"


def soap_bytes(path: Path) -> bytes:
    """The SOAP part of a sample: `.http` captures are split at the first empty line."""
    data = path.read_bytes()
    if path.suffix != ".http":
        return data
    breaks = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    index, length = min(breaks)
    return data[index + length :]


@pytest.fixture
def sample() -> object:
    def load(name: str) -> bytes:
        return soap_bytes(SAMPLES / name)

    return load
