"""pink_kernel.SegmentWriter: the journal's appends and syncs on a thread without the GIL."""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import pink_kernel

WAIT_SECONDS = 10.0


@pytest.fixture
def wake() -> Iterator[tuple[pink_kernel.SegmentWriter, socket.socket]]:
    writer = pink_kernel.SegmentWriter()
    sock = socket.socket(fileno=writer.wake_fd())
    yield writer, sock
    writer.close()
    sock.close()


def collect(writer: pink_kernel.SegmentWriter, sock: socket.socket, count: int) -> list[tuple[int, OSError | None]]:
    """Waits on the wake socket (as the event loop does) until ``count`` jobs are finished."""
    done: list[tuple[int, OSError | None]] = []
    while len(done) < count:
        readable, _, _ = select.select([sock], [], [], WAIT_SECONDS)
        assert readable, f"no wake-up within {WAIT_SECONDS} s ({len(done)} of {count} finished)"
        sock.recv(4096)
        done += writer.completed()
    return done


def test_jobs_run_in_order_into_the_named_segments_with_their_syncs(
    tmp_path: Path, wake: tuple[pink_kernel.SegmentWriter, socket.socket]
) -> None:
    writer, sock = wake
    first, second = tmp_path / "a.seg", tmp_path / "b.seg"
    tickets = [
        writer.submit(b"one", first, True),
        writer.submit(b"two", None, True),
        writer.submit(b"three", second, True),
        writer.submit(b"four", None, False),
    ]
    assert collect(writer, sock, 4) == [(ticket, None) for ticket in tickets]
    assert first.read_bytes() == b"onetwo"
    assert second.read_bytes() == b"threefour", "after a new segment, appends go to it"
    assert (writer.data_syncs, writer.dir_syncs) == (3, 2), "no sync for the unsynced job"


def test_an_existing_segment_is_appended_to_and_never_created_over(
    tmp_path: Path, wake: tuple[pink_kernel.SegmentWriter, socket.socket]
) -> None:
    writer, sock = wake
    taken = tmp_path / "taken.seg"
    taken.write_bytes(b"kept")
    ticket = writer.submit(b"x", taken, True)
    ((finished, error),) = collect(writer, sock, 1)
    assert finished == ticket
    assert isinstance(error, FileExistsError)
    assert error.errno == errno.EEXIST
    assert taken.read_bytes() == b"kept"

    appender = pink_kernel.SegmentWriter(taken)
    with socket.socket(fileno=appender.wake_fd()) as own:
        appender.submit(b"+more", None, True)
        assert collect(appender, own, 1)[0][1] is None
        appender.close()
    assert taken.read_bytes() == b"kept+more"


def test_after_a_failed_job_nothing_more_is_written(
    tmp_path: Path, wake: tuple[pink_kernel.SegmentWriter, socket.socket]
) -> None:
    writer, sock = wake
    segment = tmp_path / "s.seg"
    writer.submit(b"kept", segment, True)
    writer.submit(b"x", segment, True)  # exists: fails
    writer.submit(b"never", None, True)
    (_, ok), (_, failed), (_, refused) = collect(writer, sock, 3)
    assert ok is None
    assert isinstance(failed, FileExistsError)
    assert isinstance(refused, OSError)
    assert "an earlier append failed" in str(refused)
    assert segment.read_bytes() == b"kept"
    assert writer.data_syncs == 1


def test_an_append_without_a_segment_fails_with_an_os_error(
    wake: tuple[pink_kernel.SegmentWriter, socket.socket],
) -> None:
    writer, sock = wake
    writer.submit(b"x", None, True)
    ((_, error),) = collect(writer, sock, 1)
    assert isinstance(error, FileNotFoundError)
    assert "no open segment" in str(error)


def test_close_finishes_the_queue_then_refuses_and_wake_fd_is_given_once(tmp_path: Path) -> None:
    writer = pink_kernel.SegmentWriter()
    with socket.socket(fileno=writer.wake_fd()):
        with pytest.raises(RuntimeError, match="already taken"):
            writer.wake_fd()
        for n in range(100):
            writer.submit(b"%d," % n, tmp_path / "s.seg" if n == 0 else None, False)
        writer.close()
        writer.close()  # idempotent
        assert [error for _, error in writer.completed()] == [None] * 100
        assert (tmp_path / "s.seg").read_bytes() == b"".join(b"%d," % n for n in range(100))
        with pytest.raises(RuntimeError, match="closed"):
            writer.submit(b"late", None, False)


def test_a_missing_current_segment_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pink_kernel.SegmentWriter(tmp_path / "absent.seg")
