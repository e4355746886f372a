"""The batch writer: one item's fault stays that item's; a unique-key race is tried once more."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import IntegrityError

from latchflow.storage.batch_writer import BatchWriter


class Writes:
    """A ``write_batch`` whose items lose a unique-key race ``races[item]`` times, and whose
    item "bad" is a bad row."""

    def __init__(self, **races: int) -> None:
        self.races = races
        self.tries: list[list[str]] = []

    def __call__(self, connection: Connection, items: Sequence[str]) -> list[str | Exception]:
        self.tries.append(list(items))
        if "bad" in items:
            raise ValueError("a bad row")
        for item in items:
            if self.races.get(item):
                self.races[item] -= 1
                raise IntegrityError("INSERT", {}, Exception(f"UNIQUE constraint failed: {item}"))
        return [f"{item} written" for item in items]


def writer(tmp_path: Path, writes: Writes) -> BatchWriter[str, str]:
    return BatchWriter(create_engine(f"sqlite:///{tmp_path / 'db'}"), writes, name="test")


async def test_a_bad_row_fails_only_its_own_item(tmp_path: Path) -> None:
    writes = Writes()
    results = await writer(tmp_path, writes).write(["a", "bad", "b"])
    assert results[0] == "a written" and results[2] == "b written"
    assert isinstance(results[1], ValueError)
    assert writes.tries == [["a", "bad", "b"], ["a"], ["bad"], ["b"]]


async def test_an_item_that_loses_a_unique_key_race_alone_is_tried_once_more(
    tmp_path: Path,
) -> None:
    writes = Writes(a=2)  # in the batch, then alone: the third try finds the key's row
    assert await writer(tmp_path, writes).write(["a"]) == ["a written"]
    assert writes.tries == [["a"], ["a"], ["a"]]


async def test_an_item_that_keeps_losing_fails_with_the_unique_key_error(tmp_path: Path) -> None:
    writes = Writes(a=3)
    [result] = await writer(tmp_path, writes).write(["a"])
    assert isinstance(result, IntegrityError) and "UNIQUE constraint failed: a" in str(result)
    assert writes.tries == [["a"], ["a"], ["a"]]
