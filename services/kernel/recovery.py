"""Restart: the newest snapshot plus a verified replay of the journal's tail.

Replay runs in Rust (``Kernel.replay_frames`` over the journal's raw frames, without the GIL,
ADR 0010): each record's input must reproduce its recorded outcome exactly, so a restarted
kernel is bit-for-bit the kernel that crashed (same state hash, same dedup memory, same order
ids), or the service refuses to start.

The kernel's construction parameters are fixed by the journal: they are stored next to it
on first start, and different settings later are refused (limits change through
UpdateControl; a different kernel needs a new data directory).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pink_kernel
from services.common.config import ConfigError
from services.common.logging import get_logger
from services.common.proto import log_pb2, snapshot_pb2
from services.kernel.journal import Journal

log = get_logger(__name__)

CONFIG_FILE = "kernel_config.pb"


@dataclass(frozen=True)
class Recovered:
    kernel: pink_kernel.Kernel
    snapshot_sequence: int
    replayed: int
    venue_stream_position: str


async def pin_config(data_dir: Path, config: snapshot_pb2.KernelConfig) -> None:
    """Stores the kernel parameters on first start; refuses different ones afterwards."""
    path = data_dir / CONFIG_FILE
    wanted = config.SerializeToString(deterministic=True)

    def check_or_write() -> bytes | None:
        data_dir.mkdir(parents=True, exist_ok=True)
        if path.exists():
            return path.read_bytes()
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as file:
            file.write(wanted)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
        directory = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return None

    existing = await asyncio.to_thread(check_or_write)
    if existing is not None and existing != wanted:
        stored = snapshot_pb2.KernelConfig.FromString(existing)
        differences = [
            f"{field.name}: journal has {getattr(stored, field.name)!r}, settings say {getattr(config, field.name)!r}"
            for field in snapshot_pb2.KernelConfig.DESCRIPTOR.fields
            if getattr(stored, field.name) != getattr(config, field.name)
        ]
        msg = (
            f"the journal in {data_dir} belongs to a kernel with other parameters "
            f"({'; '.join(differences)}). Change limits with UpdateControl; a new kernel needs a new data_dir."
        )
        raise ConfigError(msg)


async def recover(journal: Journal, config: snapshot_pb2.KernelConfig) -> Recovered:
    """The kernel as of the journal's last durable record."""
    snapshot = await journal.latest_snapshot()
    position = ""
    if snapshot is None:
        kernel = pink_kernel.Kernel(config.SerializeToString())
        snapshot_sequence = 0
    else:
        stored = log_pb2.JournalSnapshot.FromString(snapshot.data)
        kernel = pink_kernel.Kernel.restore(stored.kernel_snapshot)
        snapshot_sequence = snapshot.sequence
        if kernel.last_sequence != snapshot.sequence:
            msg = f"snapshot {snapshot.sequence} holds a kernel at sequence {kernel.last_sequence}"
            raise pink_kernel.ReplayError(msg)
        position = stored.venue_stream_position
    replayed = 0
    async for block in journal.replay_frames(kernel.last_sequence):
        # The kernel replays a block in a worker thread without the GIL (ADR 0010): the loop
        # stays free and the journal reads the next block meanwhile.
        count, found = await asyncio.to_thread(kernel.replay_frames, block.data, block.start, block.stop, verify=False)
        if count != block.count:
            msg = f"replayed {count} of the {block.count} records from {block.first}"
            raise pink_kernel.ReplayError(msg)
        position = found or position
        replayed += count
    if kernel.last_sequence != journal.last_sequence:
        msg = f"replay ended at {kernel.last_sequence}, the journal at {journal.last_sequence}"
        raise pink_kernel.ReplayError(msg)
    kernel.check_invariants()
    log.info(
        "kernel_recovered",
        snapshot_sequence=snapshot_sequence,
        replayed=replayed,
        sequence=kernel.last_sequence,
        state_hash=kernel.state_hash(),
    )
    return Recovered(kernel, snapshot_sequence, replayed, position)
