"""Restart's replay straight from journal frames (ADR 0010), through the binding and the journal.

``pink_kernel.scan_frames`` (the open-time scan) and ``Kernel.replay_frames`` (the restart's
replay) read raw segment bytes; these tests drive them with the records of a real trading loop
(built by the service's own ``judge``) and with damaged copies of them: a bad checksum, a torn
tail, a sequence gap and a record whose outcome no longer matches must each stop replay loudly.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

import pink_kernel
from bench.kernel_service.journal_build import TradingLoop
from services.common.proto import log_pb2
from services.kernel import _segments as seg
from services.kernel.config import KernelSettings
from services.kernel.journal import Journal
from services.kernel.recovery import pin_config, recover
from tests.kernel.helpers import BASE_TIME_NS
from tests.kernel_service.conftest import ManualClock, make_settings

FRAME = struct.Struct("<IIQ")


@dataclass(frozen=True)
class Built:
    settings: KernelSettings
    records: list[tuple[int, bytes]]
    state_hash: str
    config: bytes


def build(tmp_path: Path, cycles: int, *, segment_bytes: int = 64 * 1024 * 1024) -> Built:
    """A journal of ``cycles`` trading-loop cycles over 10 slots, written through ``Journal.append``."""
    settings = make_settings(tmp_path / "data", segment_bytes=segment_bytes)

    async def go() -> Built:
        await pin_config(settings.data_dir, settings.kernel_config())
        config = settings.kernel_config().SerializeToString()
        kernel = pink_kernel.Kernel(config)
        loop = TradingLoop(kernel, settings.kernel_id, ManualClock(BASE_TIME_NS), settings.slot_count)
        loop.instruments()
        for n in range(cycles):
            loop.cycle(n)
        records = loop.take_records()
        journal = await Journal.open(settings.data_dir / "journal", segment_bytes=segment_bytes, fsync=False)
        try:
            for i in range(0, len(records), 50):
                await journal.append(records[i : i + 50])
        finally:
            await journal.close()
        return Built(settings, records, kernel.state_hash(), config)

    return asyncio.run(go())


def frames(records: list[tuple[int, bytes]]) -> bytes:
    return seg.encode_batch(records, records[0][0], 0, 0)[0]


def offset_of(records: list[tuple[int, bytes]], k: int) -> int:
    return sum(FRAME.size + len(payload) for _, payload in records[:k])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("replay_frames"), 12)


def test_recover_replays_the_frames_to_the_writers_state(built: Built) -> None:
    async def go() -> tuple[str, int, str]:
        journal = await Journal.open(built.settings.data_dir / "journal", fsync=False)
        try:
            recovered = await recover(journal, built.settings.kernel_config())
        finally:
            await journal.close()
        return recovered.kernel.state_hash(), recovered.replayed, recovered.venue_stream_position

    state_hash, replayed, _position = asyncio.run(go())
    assert (state_hash, replayed) == (built.state_hash, len(built.records))


def test_recover_from_a_snapshot_inside_a_segment_replays_only_the_tail(tmp_path: Path) -> None:
    """A snapshot between two index points: the first block starts at the record after it, not before."""
    small = build(tmp_path, 6, segment_bytes=256 * 1024)
    split = len(small.records) // 2 + 3
    kernel = pink_kernel.Kernel(small.config)
    kernel.replay([payload for _, payload in small.records[:split]])
    snapshot = log_pb2.JournalSnapshot(kernel_snapshot=kernel.snapshot())

    async def go() -> tuple[str, int, list[tuple[int, int]]]:
        journal = await Journal.open(small.settings.data_dir / "journal", fsync=False)
        try:
            await journal.write_snapshot(kernel.last_sequence, snapshot.SerializeToString())
            blocks = [(block.first, block.count) async for block in journal.replay_frames(kernel.last_sequence)]
            recovered = await recover(journal, small.settings.kernel_config())
        finally:
            await journal.close()
        return recovered.kernel.state_hash(), recovered.replayed, blocks

    state_hash, replayed, blocks = asyncio.run(go())
    assert (state_hash, replayed) == (small.state_hash, len(small.records) - split)
    assert blocks[0][0] == small.records[split][0]
    assert sum(count for _, count in blocks) == replayed
    assert len(blocks) > 1, "several segments"


def test_replay_frames_whole_and_in_pieces(built: Built) -> None:
    buf = frames(built.records)
    whole = pink_kernel.Kernel(built.config)
    count, _position = whole.replay_frames(buf)
    assert (count, whole.state_hash()) == (len(built.records), built.state_hash)

    pieces = pink_kernel.Kernel(built.config)
    cut = offset_of(built.records, 100)
    assert pieces.replay_frames(buf, 0, cut)[0] == 100
    assert pieces.replay_frames(buf, cut, verify=False)[0] == len(built.records) - 100
    assert pieces.state_hash() == built.state_hash
    assert pieces.replay_frames(buf, len(buf)) == (0, "")

    with pytest.raises(ValueError, match="outside"):
        pieces.replay_frames(buf, 0, len(buf) + 1)


@pytest.mark.parametrize("damage", ["checksum", "torn", "gap", "divergence"])
def test_damaged_frames_stop_replay_loudly(built: Built, damage: str) -> None:
    records, k = built.records, 150
    seq, at = records[k][0], offset_of(records, k)
    buf = bytearray(frames(records))
    if damage == "checksum":
        buf[at + FRAME.size + 5] ^= 0x40
        message, reached = f"offset {at}: checksum mismatch in the frame at sequence {seq}", seq - 1
    elif damage == "torn":
        del buf[-3:]
        message, reached = "incomplete frame", records[-2][0]
    elif damage == "gap":
        buf = bytearray(frames(records[:k]) + seg.encode_batch(records[k + 1 :], seq + 1, 0, 0)[0])
        message, reached = f"sequence {seq + 1} where {seq} was expected", seq - 1
    else:
        record = log_pb2.LogRecord.FromString(records[k][1])
        record.outcome.sequence += 1
        altered = [*records[:k], (seq, record.SerializeToString()), *records[k + 1 :]]
        buf = bytearray(frames(altered))
        message, reached = f"replay diverged at sequence {seq}", seq
    kernel = pink_kernel.Kernel(built.config)
    with pytest.raises(pink_kernel.ReplayError, match=message):
        kernel.replay_frames(bytes(buf))
    assert kernel.last_sequence == reached


def test_scan_frames_validates_like_the_format_says(built: Built) -> None:
    records = built.records[:400]
    buf = frames(records)
    end, expected, index, index_at, stop = pink_kernel.scan_frames(buf, 1, index_at=0, stride=64 * 1024)
    assert (end, expected, stop) == (len(buf), len(records) + 1, None)
    assert index[0] == (1, 0)
    assert all(b[1] - a[1] >= 64 * 1024 for a, b in itertools.pairwise(index))
    assert index_at > index[-1][1]
    assert pink_kernel.scan_frames(buf, 1)[2] == [], "no index unless asked"

    # The stored checksum is zlib's crc32 of the sequence bytes and the payload.
    length, crc, seq = FRAME.unpack_from(buf)
    assert crc == zlib.crc32(buf[8 : FRAME.size + length])
    assert seq == 1

    flipped = bytearray(buf)
    at = offset_of(records, 7)
    flipped[at + 20] ^= 1
    assert pink_kernel.scan_frames(bytes(flipped), 1)[4] == (
        "checksum",
        at,
        "checksum mismatch in the frame at sequence 8",
    )
    assert pink_kernel.scan_frames(bytes(flipped), 1, verify=False)[4] is None
    assert pink_kernel.scan_frames(buf, 2)[4] == ("sequence", 0, "sequence 1 where 2 was expected")
    end, expected, _, _, stop = pink_kernel.scan_frames(buf[:-1], 1)
    assert (end, expected) == (offset_of(records, 399), 400)
    assert stop is not None
    assert stop[:2] == ("incomplete", end)
    assert pink_kernel.scan_frames(buf, 1, start=at)[4] == ("sequence", at, "sequence 8 where 1 was expected")
    assert pink_kernel.scan_frames(buf, 8, start=at)[:2] == (len(buf), 401)
