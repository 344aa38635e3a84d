"""``acs token``: placeholder until the token store lands (replaced by the API work)."""

from __future__ import annotations

import argparse

from acs.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create"])


async def run(args: argparse.Namespace, settings: Settings) -> int:
    raise SystemExit("acs token: not available yet")
