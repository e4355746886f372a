"""Cases for the lost-answer test: each action that makes something at a vendor, how to prepare
what it needs on the vendor's simulator, and how to count what it made there.

Each vendor's cases live in a module of this package named after the plugin and are gathered
by ``tests/test_lost_answers.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from latchflow import JSON


@dataclass(frozen=True)
class Simulated:
    """A vendor simulator served over HTTP, and the connection settings that reach it."""

    url: str
    config: JSON
    http: httpx.AsyncClient
    """A client for the simulator's own routes (``/_sim/...``), based at ``url``."""


@dataclass(frozen=True)
class LostAnswerCase:
    """``action`` run once against a simulator that applies the call at ``path`` and loses the
    answer: ``prepare`` makes what it needs and returns the step's input, ``count`` reads how
    many objects the step made at the vendor (it must be one)."""

    action: str
    path: str
    prepare: Callable[[Simulated], Awaitable[JSON]]
    count: Callable[[Simulated, JSON], Awaitable[int]]
    vendor: str = ""
    """The vendor whose simulator and connection the action uses (default: the key's prefix)."""

    @property
    def connection_vendor(self) -> str:
        return self.vendor or self.action.split(".")[0]
