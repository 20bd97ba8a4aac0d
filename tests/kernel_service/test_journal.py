"""Tests of the kernel journal (services/kernel/journal.py) on real files.

The tests are plain functions that drive the journal with ``asyncio.run``; files are damaged
between runs (synchronously) the way a crash or a bad disk would leave them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kernel import _segments as segments_module
from services.kernel.journal import Journal, JournalError, RecoveryReport, Snapshot

T = TypeVar("T")
Record = tuple[int, bytes]
FRAME = struct.Struct("<IIQ")
SNAP_HEADER_SIZE = 28
SEGMENTS_LOGGER = "services.kernel._segments"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def payload(seq: int) -> bytes:
    return f"record-{seq}|".encode() * (seq % 7 + 1)


def records(first: int, count: int) -> list[Record]:
    return [(seq, payload(seq)) for seq in range(first, first + count)]


def frame_size(record: Record) -> int:
    return FRAME.size + len(record[1])


def segment_files(directory: Path) -> list[Path]:
    return sorted((directory / "segments").glob("*.seg"))


async def write(directory: Path, batches: Sequence[Sequence[Record]], **options: Any) -> None:
    journal = await Journal.open(directory, **options)
    try:
        for batch in batches:
            await journal.append(batch)
    finally:
        await journal.close()


async def reopen(directory: Path, **options: Any) -> tuple[list[Record], RecoveryReport, int]:
    """Everything a fresh open recovers: the records, the recovery report, last_sequence."""
    journal = await Journal.open(directory, **options)
    try:
        got = [record async for record in journal.replay(0)]
        return got, journal.recovery, journal.last_sequence
    finally:
        await journal.close()


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# ----------------------------------------------------------------------------- append, read, replay


def test_append_read_replay_round_trip(tmp_path: Path) -> None:
    batches = [records(1, 1), records(2, 50), records(52, 7)]
    everything = [record for batch in batches for record in batch]

    async def scenario() -> None:
        journal = await Journal.open(tmp_path / "j")
        assert journal.last_sequence == 0
        assert journal.first_sequence == 1
        assert await journal.read(0, 10) == []
        assert [r async for r in journal.replay(0)] == []
        for batch in batches:
            await journal.append(batch)
        await journal.append([])  # nothing to do
        assert journal.last_sequence == 58
        assert journal.first_sequence == 1
        assert await journal.read(0, 1000) == everything
        assert await journal.read(10, 5) == everything[10:15]
        assert await journal.read(57, 5) == everything[57:]
        assert await journal.read(58, 5) == []
        assert await journal.read(500, 5) == []
        assert [r async for r in journal.replay(0)] == everything
        assert [r async for r in journal.replay(40)] == everything[40:]
        assert [r async for r in journal.replay(58)] == []
        with pytest.raises(ValueError, match="limit"):
            await journal.read(0, 0)
        with pytest.raises(ValueError, match="after_sequence"):
            await journal.read(-1, 1)
        await journal.close()

    run(scenario())
    files = segment_files(tmp_path / "j")
    assert [f.name for f in files] == ["00000000000000000001.seg"]
    assert files[0].stat().st_size == sum(frame_size(r) for r in everything)


def test_frame_layout_on_disk(tmp_path: Path) -> None:
    run(write(tmp_path, [[(1, b"hello")]]))
    data = segment_files(tmp_path)[0].read_bytes()
    length, crc, seq = FRAME.unpack_from(data)
    assert (length, seq) == (5, 1)
    assert crc == zlib.crc32(struct.pack("<Q", 1) + b"hello")
    assert data[FRAME.size :] == b"hello"


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([(2, b"x")], "expected sequence 1, got 2"),  # gap at the start
        ([(1, b"x"), (3, b"y")], "expected sequence 2, got 3"),  # gap inside the batch
        ([(1, b"x"), (1, b"y")], "expected sequence 2, got 1"),  # duplicate inside the batch
    ],
)
def test_non_contiguous_batch_writes_nothing(tmp_path: Path, batch: list[Record], message: str) -> None:
    async def scenario() -> None:
        journal = await Journal.open(tmp_path)
        with pytest.raises(JournalError, match=message):
            await journal.append(batch)
        assert journal.last_sequence == 0
        await journal.append(records(1, 3))
        size = segment_files(tmp_path)[0].stat().st_size
        for bad in ([(3, b"dup")], [(5, b"gap")], [(4, b"ok"), (6, b"gap")]):
            with pytest.raises(JournalError, match="contiguously"):
                await journal.append(bad)
        assert journal.last_sequence == 3
        assert segment_files(tmp_path)[0].stat().st_size == size
        await journal.append(records(4, 1))
        await journal.close()

    run(scenario())
    got, _, last = run(reopen(tmp_path))
    assert got == records(1, 4)
    assert last == 4


def test_concurrent_appends_are_serialised(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = await Journal.open(tmp_path, fsync=False)
        await asyncio.gather(*(journal.append(records(1 + 10 * i, 10)) for i in range(20)))
        assert journal.last_sequence == 200
        assert await journal.read(0, 1000) == records(1, 200)
        await journal.close()

    run(scenario())


def test_cancelled_append_still_completes_consistently(tmp_path: Path) -> None:
    async def scenario() -> int:
        journal = await Journal.open(tmp_path)
        await journal.append(records(1, 5))
        task = asyncio.create_task(journal.append(records(6, 5)))
        await asyncio.sleep(0)  # the commit is under way in a worker thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await journal.close()  # waits for the commit, which finished and was recorded
        assert journal.last_sequence == 10
        return journal.last_sequence

    assert run(scenario()) == 10
    got, _, last = run(reopen(tmp_path))
    assert (got, last) == (records(1, 10), 10)


def test_rotation_across_segments(tmp_path: Path) -> None:
    segment_bytes = 300
    small = records(1, 40)  # 16 + 8..84 bytes each
    big = (41, b"B" * 1000)  # larger than a segment: a segment of its own

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=segment_bytes)
        for record in small:
            await journal.append([record])
        await journal.append([big])
        await journal.append(records(42, 3))
        assert journal.last_sequence == 44
        everything = [*small, big, *records(42, 3)]
        assert await journal.read(0, 100) == everything
        for after in (0, 5, 17, 39, 40, 41, 43):
            assert await journal.read(after, 3) == everything[after : after + 3]
        assert [r async for r in journal.replay(3)] == everything[3:]
        await journal.close()

    run(scenario())
    files = segment_files(tmp_path)
    assert len(files) > 5
    firsts = [int(f.stem) for f in files]
    assert firsts[0] == 1
    assert "00000000000000000041.seg" in [f.name for f in files]
    assert "00000000000000000042.seg" in [f.name for f in files]
    for f in files:
        if f.name != "00000000000000000041.seg":
            assert f.stat().st_size <= segment_bytes
    assert (tmp_path / "segments" / "00000000000000000041.seg").stat().st_size == FRAME.size + 1000
    got, report, last = run(reopen(tmp_path, segment_bytes=segment_bytes))
    assert last == 44
    assert report.segments == len(files)
    assert [seq for seq, _ in got] == list(range(1, 45))


def test_read_from_the_middle_of_a_large_segment(tmp_path: Path) -> None:
    """Reads start from the sparse index, not from the start of the segment."""
    count = 20_000

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, fsync=False)
        await journal.append(records(1, count))
        for after in (0, 1, 4_321, 12_345, count - 1):
            assert await journal.read(after, 2) == records(after + 1, min(2, count - after))
        await journal.close()

    run(scenario())
    assert len(segment_files(tmp_path)) == 1

    async def after_reopen() -> None:
        journal = await Journal.open(tmp_path)
        assert await journal.read(15_000, 3) == records(15_001, 3)
        await journal.close()

    run(after_reopen())


def test_reopen_recovers_last_sequence_and_continues(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 10), records(11, 5)], segment_bytes=200))
    got, report, last = run(reopen(tmp_path, segment_bytes=200))
    assert last == 15
    assert got == records(1, 15)
    assert report == RecoveryReport(
        last_sequence=15,
        snapshot_sequence=None,
        truncated_bytes=0,
        truncated_segment=None,
        segments=len(segment_files(tmp_path)),
    )
    run(write(tmp_path, [records(16, 3)], segment_bytes=200))
    got, _, last = run(reopen(tmp_path))
    assert (got, last) == (records(1, 18), 18)


def test_open_creates_the_layout_and_closes_idempotently(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"

    async def scenario() -> None:
        journal = await Journal.open(directory)
        await journal.close()
        await journal.close()
        with pytest.raises(JournalError, match="closed"):
            await journal.append(records(1, 1))
        with pytest.raises(JournalError, match="closed"):
            await journal.read(0, 1)

    run(scenario())
    assert (directory / "segments").is_dir()
    assert (directory / "snapshots").is_dir()


def test_an_empty_last_segment_left_by_a_crash_is_reused(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 3)]))
    (tmp_path / "segments" / "00000000000000000004.seg").write_bytes(b"")
    got, report, last = run(reopen(tmp_path))
    assert (got, last, report.segments, report.truncated_bytes) == (records(1, 3), 3, 2, 0)
    run(write(tmp_path, [records(4, 2)]))
    assert (tmp_path / "segments" / "00000000000000000004.seg").stat().st_size == sum(
        frame_size(r) for r in records(4, 2)
    )
    assert run(reopen(tmp_path))[0] == records(1, 5)


# ----------------------------------------------------------------------------- torn and corrupt tails


def _tail_cases() -> list[tuple[str, Callable[[Path, int], None], int]]:
    """(name, damage(segment, start of the last frame), bytes of the last frame that survive)."""

    def cut(keep: int) -> Callable[[Path, int], None]:
        def damage(path: Path, last_frame: int) -> None:
            os.truncate(path, last_frame + keep)

        return damage

    def cut_by(missing: int) -> Callable[[Path, int], None]:
        def damage(path: Path, _last_frame: int) -> None:
            os.truncate(path, path.stat().st_size - missing)

        return damage

    def bad_crc(path: Path, last_frame: int) -> None:
        flip_byte(path, last_frame + 4)

    def bad_payload(path: Path, last_frame: int) -> None:
        flip_byte(path, path.stat().st_size - 1)

    def zero_fill(path: Path, _last_frame: int) -> None:
        with path.open("ab") as file:
            file.write(bytes(4096))

    return [
        ("mid-header", cut(7), -1),
        ("header-only", cut(FRAME.size), -1),
        ("mid-payload", cut(FRAME.size + 5), -1),
        ("short-by-1", cut_by(1), -1),
        ("short-by-3", cut_by(3), -1),
        ("bad-crc", bad_crc, -1),
        ("bad-payload", bad_payload, -1),
        ("zero-filled", zero_fill, 0),
    ]


@pytest.mark.parametrize(("name", "damage", "lost"), _tail_cases(), ids=[c[0] for c in _tail_cases()])
def test_torn_tail_is_truncated_at_the_last_good_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, damage: Callable[[Path, int], None], lost: int
) -> None:
    written = records(1, 30)
    run(write(tmp_path, [written[:10], written[10:]], segment_bytes=1500))
    last_segment = segment_files(tmp_path)[-1]
    first_in_last = int(last_segment.stem)
    in_last = written[first_in_last - 1 :]
    last_frame = sum(frame_size(r) for r in in_last[:-1])
    good_end = last_frame if lost else last_frame + frame_size(in_last[-1])
    damage(last_segment, last_frame)
    damaged_size = last_segment.stat().st_size

    with caplog.at_level(logging.WARNING, logger=SEGMENTS_LOGGER):
        got, report, last = run(reopen(tmp_path))
    expected = written[:-1] if lost else written
    assert got == expected, name
    assert last == expected[-1][0]
    assert report.truncated_bytes == damaged_size - good_end
    assert report.truncated_segment == last_segment.name
    assert report.last_sequence == last
    assert last_segment.stat().st_size == good_end
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "torn tail" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{damaged_size - good_end} bytes" in warnings[0].getMessage()
    assert last_segment.name in warnings[0].getMessage()

    # The journal carries on from the last good record, and a second open finds nothing to cut.
    run(write(tmp_path, [[(last + 1, b"after the crash")]]))
    got, report, _ = run(reopen(tmp_path))
    assert got == [*expected, (last + 1, b"after the crash")]
    assert report.truncated_bytes == 0
    assert report.truncated_segment is None


def test_whole_last_segment_torn_leaves_it_empty(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 5), records(6, 5)], segment_bytes=100))
    last_segment = segment_files(tmp_path)[-1]
    first_in_last = int(last_segment.stem)
    os.truncate(last_segment, 10)  # not even one complete header
    got, report, last = run(reopen(tmp_path))
    assert got == records(1, first_in_last - 1)
    assert last == first_in_last - 1
    assert report.truncated_bytes == 10
    assert last_segment.stat().st_size == 0
    run(write(tmp_path, [records(first_in_last, 2)], segment_bytes=100))
    assert run(reopen(tmp_path))[0] == records(1, first_in_last + 1)


def test_corruption_in_an_older_segment_raises(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 10), records(11, 10)], segment_bytes=400))
    files = segment_files(tmp_path)
    assert len(files) >= 2
    flip_byte(files[0], FRAME.size + 2)  # payload of the first record
    with pytest.raises(JournalError, match="corrupt record"):
        run(reopen(tmp_path))


def test_torn_end_of_an_older_segment_raises(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 10), records(11, 10)], segment_bytes=400))
    first = segment_files(tmp_path)[0]
    os.truncate(first, first.stat().st_size - 2)
    with pytest.raises(JournalError, match="incomplete frame"):
        run(reopen(tmp_path))


@pytest.mark.parametrize("field_offset", [0, 4, 8, FRAME.size + 1], ids=["length", "crc", "sequence", "payload"])
def test_corrupt_middle_record_of_the_last_segment_raises(tmp_path: Path, field_offset: int) -> None:
    written = records(1, 20)
    run(write(tmp_path, [written]))
    segment = segment_files(tmp_path)[0]
    tenth = sum(frame_size(r) for r in written[:9])
    before = segment.read_bytes()
    flip_byte(segment, tenth + field_offset)
    with pytest.raises(JournalError, match=r"middle|corrupt"):
        run(reopen(tmp_path))
    assert segment.stat().st_size == len(before)  # nothing was truncated


def test_checksummed_record_with_the_wrong_sequence_raises(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 3)]))
    segment = segment_files(tmp_path)[0]
    bogus = b"stray"
    with segment.open("ab") as file:  # a valid frame numbered 7 where 4 belongs: a gap, not a torn write
        file.write(FRAME.pack(len(bogus), zlib.crc32(struct.pack("<Q", 7) + bogus), 7) + bogus)
    with pytest.raises(JournalError, match="sequence 7 where 4 was expected"):
        run(reopen(tmp_path))


def test_missing_middle_segment_is_a_gap(tmp_path: Path) -> None:
    run(write(tmp_path, [[r] for r in records(1, 30)], segment_bytes=200))
    files = segment_files(tmp_path)
    assert len(files) >= 3
    files[1].unlink()
    with pytest.raises(JournalError, match="sequence gap"):
        run(reopen(tmp_path))


def test_segment_named_after_the_wrong_sequence_raises(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 3)]))
    segment = segment_files(tmp_path)[0]
    segment.rename(segment.with_name("00000000000000000002.seg"))
    with pytest.raises(JournalError, match="sequence 1 where 2 was expected"):
        run(reopen(tmp_path))


def test_read_verifies_checksums_of_bytes_damaged_after_open(tmp_path: Path) -> None:
    written = records(1, 10)

    async def scenario() -> None:
        journal = await Journal.open(tmp_path)
        await journal.append(written)
        flip_byte(segment_files(tmp_path)[0], frame_size(written[0]) + FRAME.size)  # record 2's payload
        assert await journal.read(0, 1) == written[:1]
        with pytest.raises(JournalError, match="corrupt record 2"):
            await journal.read(0, 5)
        await journal.close()

    run(scenario())


@given(
    batches=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=10),
    segment_bytes=st.integers(min_value=24, max_value=400),
    data=st.data(),
)
def test_truncated_final_file_recovers_an_exact_prefix(
    batches: list[list[bytes]], segment_bytes: int, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        written: list[Record] = []
        plan: list[list[Record]] = []
        for batch in batches:
            plan.append([(len(written) + i + 1, body) for i, body in enumerate(batch)])
            written.extend(plan[-1])
        run(write(directory, plan, segment_bytes=segment_bytes, fsync=False))

        last_segment = segment_files(directory)[-1]
        first_in_last = int(last_segment.stem)
        cut = data.draw(st.integers(min_value=0, max_value=last_segment.stat().st_size), label="cut")
        os.truncate(last_segment, cut)

        survivors, end = first_in_last - 1, 0
        for record in written[first_in_last - 1 :]:
            if end + frame_size(record) > cut:
                break
            end += frame_size(record)
            survivors += 1

        got, report, last = run(reopen(directory, segment_bytes=segment_bytes, fsync=False))
        assert got == written[:survivors]
        assert last == survivors
        assert report.truncated_bytes == cut - end
        assert last_segment.stat().st_size == end


# ----------------------------------------------------------------------------- snapshots


def test_snapshot_write_and_read(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = await Journal.open(tmp_path)
        assert await journal.latest_snapshot() is None
        await journal.append(records(1, 10))
        await journal.write_snapshot(0, b"genesis")
        await journal.write_snapshot(4, b"state@4")
        await journal.write_snapshot(10, b"state@10" * 1000)
        assert await journal.latest_snapshot() == Snapshot(sequence=10, data=b"state@10" * 1000)
        with pytest.raises(JournalError, match="outside"):
            await journal.write_snapshot(11, b"future")
        with pytest.raises(JournalError, match="outside"):
            await journal.write_snapshot(-1, b"past")
        await journal.close()

    run(scenario())
    names = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert names == [f"{seq:020d}.snap" for seq in (0, 4, 10)]  # no tmp file left behind
    raw = (tmp_path / "snapshots" / f"{4:020d}.snap").read_bytes()
    magic, seq, length, crc = struct.unpack_from("<8sQQI", raw)
    assert (magic, seq, length, raw[SNAP_HEADER_SIZE:]) == (b"PINKSNP1", 4, 7, b"state@4")
    assert crc == zlib.crc32(raw[: SNAP_HEADER_SIZE - 4] + raw[SNAP_HEADER_SIZE:])
    assert run(reopen(tmp_path))[1].snapshot_sequence == 10


@pytest.mark.parametrize("damage", ["data", "header", "length", "magic", "truncated", "renamed"])
def test_corrupt_newest_snapshot_falls_back_to_the_previous_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    async def prepare() -> None:
        journal = await Journal.open(tmp_path)
        await journal.append(records(1, 10))
        await journal.write_snapshot(5, b"state@5")
        await journal.write_snapshot(9, b"state@9")
        await journal.close()

    run(prepare())
    newest = tmp_path / "snapshots" / f"{9:020d}.snap"
    if damage == "data":
        flip_byte(newest, SNAP_HEADER_SIZE + 1)
    elif damage == "header":
        flip_byte(newest, 8)  # the sequence field
    elif damage == "length":
        flip_byte(newest, 16 + 7)  # the top byte of the length: an absurd size
    elif damage == "magic":
        flip_byte(newest, 0)
    elif damage == "truncated":
        os.truncate(newest, SNAP_HEADER_SIZE + 3)
    else:
        newest.rename(newest.with_name(f"{8:020d}.snap"))  # header and name disagree

    async def check() -> tuple[Snapshot | None, RecoveryReport]:
        journal = await Journal.open(tmp_path)
        try:
            return await journal.latest_snapshot(), journal.recovery
        finally:
            await journal.close()

    with caplog.at_level(logging.WARNING, logger=SEGMENTS_LOGGER):
        snapshot, report = run(check())
    assert snapshot == Snapshot(sequence=5, data=b"state@5")
    assert report.snapshot_sequence == 5
    assert any("snapshot" in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)


def test_stale_tmp_files_are_removed_on_open(tmp_path: Path) -> None:
    run(write(tmp_path, [records(1, 2)]))
    (tmp_path / "snapshots" / f"{2:020d}.snap.tmp").write_bytes(b"half a snapshot")
    (tmp_path / "consumers.json.tmp").write_bytes(b"{half")
    run(reopen(tmp_path))
    assert not list(tmp_path.rglob("*.tmp"))


def test_snapshot_beyond_the_log_means_lost_records(tmp_path: Path) -> None:
    async def prepare() -> None:
        journal = await Journal.open(tmp_path)
        await journal.append(records(1, 10))
        await journal.write_snapshot(10, b"state")
        await journal.close()

    run(prepare())
    segment = segment_files(tmp_path)[0]
    os.truncate(segment, segment.stat().st_size - 1)  # record 10 is lost, yet the snapshot covers it
    size = segment.stat().st_size
    with pytest.raises(JournalError, match="beyond the last journal record"):
        run(reopen(tmp_path))
    assert segment.stat().st_size == size  # the evidence is left alone


def test_ack_beyond_the_log_means_lost_records(tmp_path: Path) -> None:
    async def prepare() -> None:
        journal = await Journal.open(tmp_path)
        await journal.append(records(1, 10))
        await journal.register_consumer("sink")
        await journal.ack("sink", 10)
        await journal.close()

    run(prepare())
    flip_byte(segment_files(tmp_path)[0], segment_files(tmp_path)[0].stat().st_size - 1)
    with pytest.raises(JournalError, match="consumers acknowledged records beyond"):
        run(reopen(tmp_path))


# ----------------------------------------------------------------------------- consumers


def test_consumers_register_ack_and_persist(tmp_path: Path) -> None:
    async def first_run() -> None:
        journal = await Journal.open(tmp_path)
        assert dict(journal.consumers) == {}
        await journal.append(records(1, 10))
        assert await journal.register_consumer("clickhouse") == 0
        assert await journal.register_consumer("hazelcast") == 0
        assert await journal.ack("clickhouse", 7) == 7
        assert await journal.register_consumer("clickhouse") == 7  # idempotent
        assert await journal.ack("clickhouse", 3) == 7  # monotonic: a lower ack is ignored
        assert await journal.ack("hazelcast", 10) == 10
        with pytest.raises(JournalError, match="cannot acknowledge 11"):
            await journal.ack("hazelcast", 11)
        with pytest.raises(JournalError, match="unknown consumer"):
            await journal.ack("nobody", 1)
        with pytest.raises(ValueError, match="non-empty"):
            await journal.register_consumer("")
        view = journal.consumers
        assert dict(view) == {"clickhouse": 7, "hazelcast": 10}
        with pytest.raises(TypeError):
            view["clickhouse"] = 9  # type: ignore[index]
        await journal.close()

    run(first_run())
    doc = json.loads((tmp_path / "consumers.json").read_text())
    assert doc == {"format": 1, "consumers": {"clickhouse": 7, "hazelcast": 10}}

    async def second_run() -> None:
        journal = await Journal.open(tmp_path)
        assert dict(journal.consumers) == {"clickhouse": 7, "hazelcast": 10}
        assert await journal.register_consumer("clickhouse") == 7
        assert await journal.ack("clickhouse", 9) == 9
        await journal.close()

    run(second_run())
    assert json.loads((tmp_path / "consumers.json").read_text())["consumers"]["clickhouse"] == 9


@pytest.mark.parametrize("content", [b"{not json", b'{"format": 1, "consumers": {"a": -1}}', b"[]"])
def test_damaged_consumers_file_raises(tmp_path: Path, content: bytes) -> None:
    run(write(tmp_path, [records(1, 2)]))
    (tmp_path / "consumers.json").write_bytes(content)
    with pytest.raises(JournalError, match="consumer cursors file"):
        run(reopen(tmp_path))


# ----------------------------------------------------------------------------- compaction


def test_compact_removes_only_segments_covered_by_snapshot_and_every_ack(tmp_path: Path) -> None:
    segment_bytes = 200

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=segment_bytes)
        for record in records(1, 60):
            await journal.append([record])
        files = segment_files(tmp_path)
        bounds = [(int(f.stem), int(g.stem) - 1) for f, g in itertools.pairwise(files)]
        assert len(bounds) >= 6

        assert await journal.compact() == 0  # no snapshot yet
        await journal.register_consumer("slow")
        await journal.register_consumer("fast")
        await journal.ack("fast", 60)
        snapshot_at = bounds[4][1]  # the end of the fifth segment
        await journal.write_snapshot(bounds[1][1], b"old")
        await journal.write_snapshot(snapshot_at, b"new")
        old_snapshot = (tmp_path / "snapshots" / f"{bounds[1][1]:020d}.snap").stat().st_size
        assert await journal.compact() == old_snapshot  # "slow" has acknowledged nothing: only the old snapshot
        assert len(segment_files(tmp_path)) == len(files)
        assert journal.first_sequence == 1

        await journal.ack("slow", bounds[2][1] + 1)  # inside the fourth segment
        sizes = sum(f.stat().st_size for f in files[:3])
        assert await journal.compact() == sizes
        assert segment_files(tmp_path) == files[3:]
        assert journal.first_sequence == bounds[3][0]
        assert [p.name for p in (tmp_path / "snapshots").iterdir()] == [f"{snapshot_at:020d}.snap"]

        with pytest.raises(JournalError, match="compacted"):
            await journal.read(0, 10)
        with pytest.raises(JournalError, match="compacted"):
            await journal.read(bounds[3][0] - 2, 10)
        with pytest.raises(JournalError, match="compacted"):
            [r async for r in journal.replay(0)]
        assert await journal.read(bounds[3][0] - 1, 2) == records(bounds[3][0], 2)
        assert [r async for r in journal.replay(snapshot_at)] == records(snapshot_at + 1, 60 - snapshot_at)

        await journal.ack("slow", 60)
        await journal.compact()  # the snapshot is the limit now
        assert journal.first_sequence == snapshot_at + 1
        await journal.write_snapshot(60, b"all")
        await journal.compact()  # everything is covered, but the current segment stays
        remaining = segment_files(tmp_path)
        assert remaining == files[-1:]
        assert journal.first_sequence == int(remaining[0].stem)
        await journal.close()

    run(scenario())

    async def after_reopen() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=segment_bytes)
        first = journal.first_sequence
        assert journal.last_sequence == 60
        assert first == int(segment_files(tmp_path)[0].stem)
        assert await journal.read(first - 1, 100) == records(first, 61 - first)
        await journal.append(records(61, 1))
        await journal.close()

    run(after_reopen())


def test_compact_without_consumers_follows_the_snapshot(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=100)
        for record in records(1, 20):
            await journal.append([record])
        await journal.write_snapshot(20, b"state")
        assert await journal.compact() > 0
        assert len(segment_files(tmp_path)) == 1
        assert journal.first_sequence == int(segment_files(tmp_path)[0].stem)
        assert [r async for r in journal.replay(20)] == []
        await journal.close()

    run(scenario())


def test_compact_keeps_the_previous_segments_when_the_newest_snapshot_is_corrupt(tmp_path: Path) -> None:
    async def prepare() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=100)
        for record in records(1, 20):
            await journal.append([record])
        await journal.write_snapshot(3, b"state@3")
        await journal.write_snapshot(20, b"state@20")
        await journal.close()

    run(prepare())
    flip_byte(tmp_path / "snapshots" / f"{20:020d}.snap", SNAP_HEADER_SIZE)

    async def compact() -> int:
        journal = await Journal.open(tmp_path, segment_bytes=100)
        try:
            await journal.compact()
            return journal.first_sequence
        finally:
            await journal.close()

    assert run(compact()) <= 4  # replay from snapshot 3 stays possible


# ----------------------------------------------------------------------------- fsync discipline


def test_one_fsync_per_append_whatever_the_batch_size(tmp_path: Path) -> None:
    """Counted by the writer thread that makes the syncs (``pink_kernel.SegmentWriter``)."""

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=1024 * 1024)
        await journal.append(records(1, 1))  # creates the first segment: data + its directory entry
        assert journal.append_syncs == (1, 1)
        seq = 2
        for size in (1, 10, 1000, 5000):
            data, directory = journal.append_syncs
            await journal.append(records(seq, size))
            seq += size
            assert journal.append_syncs == (data + 1, directory), size
        data, directory = journal.append_syncs
        await journal.append([(seq, b"x" * 2 * 1024 * 1024)])  # rotation: one data sync + one directory sync
        assert journal.append_syncs == (data + 1, directory + 1)
        await journal.close()

    run(scenario())


def test_non_durable_mode_never_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    monkeypatch.setattr(os, "fdatasync", calls.append)

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=100, fsync=False)
        for record in records(1, 20):
            await journal.append([record])
        await journal.register_consumer("c")
        await journal.write_snapshot(20, b"s")
        assert journal.append_syncs == (0, 0)
        await journal.close()

    run(scenario())
    assert calls == []


# ----------------------------------------------------------------------------- throughput smoke


def test_replay_of_200k_small_records(tmp_path: Path) -> None:
    count, batch = 200_000, 20_000
    body = b"0123456789abcdef"

    async def fill() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=1024 * 1024, fsync=False)
        for first in range(1, count + 1, batch):
            await journal.append([(seq, body) for seq in range(first, first + batch)])
        await journal.close()

    async def replay() -> int:
        journal = await Journal.open(tmp_path, segment_bytes=1024 * 1024)
        seen = 0
        async for _seq, _payload in journal.replay(0):
            seen += 1
        await journal.close()
        return seen

    run(fill())
    assert run(replay()) == count


@pytest.mark.parametrize("chunk", [1, 20, 100, 1000])
def test_chunk_boundaries_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Tiny read and scan chunks put chunk boundaries inside headers and payloads."""
    monkeypatch.setattr(segments_module, "READ_CHUNK", chunk)
    monkeypatch.setattr(segments_module, "SCAN_CHUNK", chunk)
    written = [*records(1, 40), (41, b"L" * 5000), *records(42, 5)]
    run(write(tmp_path, [written[:20], written[20:]], segment_bytes=3000))
    last_segment = segment_files(tmp_path)[-1]
    os.truncate(last_segment, last_segment.stat().st_size - 2)
    got, report, last = run(reopen(tmp_path, segment_bytes=3000))
    assert got == written[:-1]
    assert last == 45
    assert report.truncated_bytes == frame_size(written[-1]) - 2

    async def reads() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=3000)
        for after in range(45):
            assert await journal.read(after, 3) == written[after : min(after + 3, 45)]
        await journal.close()

    run(reads())


def test_record_larger_than_a_read_chunk(tmp_path: Path) -> None:
    big = (2, os.urandom(3 * 1024 * 1024))
    written = [(1, b"a"), big, (3, b"c")]
    run(write(tmp_path, [written], fsync=False))
    got, _, _ = run(reopen(tmp_path))
    assert got == written

    async def read_big() -> list[Record]:
        journal = await Journal.open(tmp_path)
        try:
            return await journal.read(1, 1)
        finally:
            await journal.close()

    assert run(read_big()) == [big]


def test_abandoned_replay_is_harmless(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = await Journal.open(tmp_path, fsync=False)
        await journal.append(records(1, 1000))
        seen = 0
        async for seq, _ in journal.replay(0):
            seen = seq
            if seq == 10:
                break
        assert seen == 10
        await journal.append(records(1001, 1))
        await journal.close()

    run(scenario())
    assert len(run(reopen(tmp_path))[0]) == 1001


def test_a_failed_append_is_reported_and_the_journal_refuses_more(tmp_path: Path) -> None:
    """The writer thread's OS error reaches the appender as a JournalError naming the records; the
    journal then refuses every append until it is reopened (a half-done batch is never built on)."""

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=1024)
        await journal.append(records(1, 1))
        shutil.rmtree(tmp_path / "segments")  # the next rotation cannot create its segment
        with pytest.raises(JournalError, match=r"append of records 2\.\.2 failed: .*No such file"):
            await journal.append([(2, b"x" * 2048)])
        with pytest.raises(JournalError, match="failed earlier and must be reopened"):
            await journal.append([(2, b"y")])
        assert journal.last_sequence == 1
        await journal.close()

    run(scenario())


def test_appends_queued_behind_a_failed_one_fail_and_change_nothing(tmp_path: Path) -> None:
    """Appends called before an earlier one is durable are written after it; when it fails, the
    writer thread refuses them unwritten and each caller gets the journal's failure."""

    async def scenario() -> None:
        journal = await Journal.open(tmp_path, segment_bytes=1024)
        await journal.append(records(1, 1))
        shutil.rmtree(tmp_path / "segments")  # the next rotation cannot create its segment
        failing = asyncio.ensure_future(journal.append([(2, b"x" * 2048)]))
        behind = asyncio.ensure_future(journal.append(records(3, 2)))
        outcomes = await asyncio.gather(failing, behind, return_exceptions=True)
        assert [type(outcome) for outcome in outcomes] == [JournalError, JournalError]
        assert all("append of records 2..2 failed" in str(outcome) for outcome in outcomes)
        assert journal.last_sequence == 1
        await journal.close()

    run(scenario())
