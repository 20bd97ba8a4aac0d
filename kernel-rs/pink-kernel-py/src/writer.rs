//! `SegmentWriter`: the journal's group commits (one `write` and one
//! `fdatasync` per batch, ADR 0005) on a thread of their own that never takes
//! the GIL (ADR 0012).
//!
//! A Python worker thread doing the same needs the GIL back after `write` and
//! again after `fdatasync`; while the event loop is busy that wait was most of
//! a commit's time (~580 us measured around a ~200 us `fdatasync`). Here the
//! thread only writes, syncs and queues the result; the event loop learns of
//! it from one byte on a socket it watches (`wake_fd`, `loop.add_reader`) and
//! collects the results with `completed()`.
//!
//! Segment files are opened here: the current one (append) when the writer is
//! made, a new one (create-new, then a directory fsync) when a job names it,
//! after which the previous one is closed. Jobs run in submission order; after
//! a failed job every later one is refused unwritten.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Mode of a new segment file (as the Python journal created them).
const SEGMENT_MODE: u32 = 0o644;

struct Job {
    ticket: u64,
    segment: Option<PathBuf>,
    data: Vec<u8>,
    sync: bool,
}

/// A finished job: its ticket and the OS error that failed it, if any.
struct Done {
    ticket: u64,
    error: Option<io::Error>,
}

#[derive(Default)]
struct Shared {
    done: Mutex<Vec<Done>>,
    data_syncs: AtomicU64,
    dir_syncs: AtomicU64,
}

/// A lock that a panicking holder cannot make unusable: every value behind
/// these locks is valid after any partial update (a list being appended to,
/// an `Option` being taken).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn apply(file: &mut Option<File>, job: &Job, shared: &Shared) -> io::Result<()> {
    if let Some(path) = &job.segment {
        let mut created = OpenOptions::new().append(true).create_new(true).mode(SEGMENT_MODE).open(path)?;
        created.write_all(&job.data)?;
        if job.sync {
            created.sync_data()?;
            shared.data_syncs.fetch_add(1, Ordering::Relaxed);
            let directory = path
                .parent()
                .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "a segment path needs a directory"))?;
            File::open(directory)?.sync_all()?;
            shared.dir_syncs.fetch_add(1, Ordering::Relaxed);
        }
        // The previous segment is closed here, once the new one holds the batch.
        *file = Some(created);
        return Ok(());
    }
    let current = file.as_mut().ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no open segment to append to"))?;
    current.write_all(&job.data)?;
    if job.sync {
        current.sync_data()?;
        shared.data_syncs.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn run(mut file: Option<File>, jobs: &Receiver<Job>, shared: &Shared, mut wake: UnixStream) {
    // After a failed job nothing more is written: what the failure left on disk is unknown,
    // so only a reopen (recovery) may decide where the journal ends.
    let mut failed: Option<String> = None;
    for job in jobs {
        let error = match &failed {
            Some(first) => Some(io::Error::other(format!("refused: an earlier append failed ({first})"))),
            None => apply(&mut file, &job, shared).err(),
        };
        if failed.is_none() {
            failed = error.as_ref().map(ToString::to_string);
        }
        lock(&shared.done).push(Done { ticket: job.ticket, error });
        match wake.write(&[1]) {
            // A full socket buffer means a wake-up is already pending.
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            // The reading end is gone: nobody collects results any more. Ending the
            // thread makes every later `submit` fail instead of queueing into the void.
            Err(_) => return,
        }
    }
}

/// The OSError Python would raise: `OSError(errno, message)` becomes the errno's subclass
/// (`FileExistsError`...) with `errno` set; an error of this module's own (no errno) maps by kind.
fn os_error(error: io::Error) -> PyErr {
    match error.raw_os_error() {
        Some(code) => PyOSError::new_err((code, error.to_string())),
        None => PyErr::from(error),
    }
}

/// Appends journal batches to segment files on a thread that never holds the GIL.
#[pyclass(module = "pink_kernel", frozen)]
pub struct SegmentWriter {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    next: AtomicU64,
    wake: Mutex<Option<UnixStream>>,
}

#[pymethods]
impl SegmentWriter {
    /// ``SegmentWriter(current=None)``: ``current`` is the segment to append to (it must exist);
    /// without one, the first job must name a new segment.
    #[new]
    #[pyo3(signature = (current=None))]
    fn new(current: Option<PathBuf>) -> PyResult<Self> {
        let file = current.map(|path| OpenOptions::new().append(true).open(path)).transpose()?;
        let (theirs, ours) = UnixStream::pair()?;
        theirs.set_nonblocking(true)?;
        ours.set_nonblocking(true)?;
        let (sender, jobs) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || run(file, &jobs, &for_thread, theirs))?;
        Ok(SegmentWriter {
            jobs: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            shared,
            next: AtomicU64::new(1),
            wake: Mutex::new(Some(ours)),
        })
    }

    /// The descriptor that becomes readable when results are ready (non-blocking). The caller
    /// owns it from now on (close it after ``close()``); a second call raises.
    fn wake_fd(&self) -> PyResult<RawFd> {
        let wake = lock(&self.wake).take().ok_or_else(|| PyRuntimeError::new_err("wake_fd() was already taken"))?;
        Ok(wake.into_raw_fd())
    }

    /// Queues ``data`` (copied) for appending, to the new file ``segment`` if given, then a data
    /// sync (and a directory sync for a new segment) if ``sync``; returns the job's ticket.
    #[pyo3(signature = (data, segment, sync))]
    fn submit(&self, data: &Bound<'_, PyBytes>, segment: Option<PathBuf>, sync: bool) -> PyResult<u64> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let job = Job { ticket, segment, data: data.as_bytes().to_vec(), sync };
        let jobs = lock(&self.jobs);
        let sender = jobs.as_ref().ok_or_else(|| PyRuntimeError::new_err("the segment writer is closed"))?;
        sender.send(job).map_err(|_| PyRuntimeError::new_err("the segment writer's thread has stopped"))?;
        Ok(ticket)
    }

    /// The jobs finished since the last call, in order: ``(ticket, None)`` or ``(ticket, OSError)``.
    fn completed(&self, py: Python<'_>) -> Vec<(u64, Option<Py<PyAny>>)> {
        let done = std::mem::take(&mut *lock(&self.shared.done));
        done.into_iter()
            .map(|item| (item.ticket, item.error.map(|error| os_error(error).into_value(py).into_any())))
            .collect()
    }

    /// Finishes the queued jobs, stops the thread and closes the segment (idempotent). Blocks
    /// until then, without the GIL: call it off the event loop.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        drop(lock(&self.jobs).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            py.detach(|| thread.join()).map_err(|_| PyRuntimeError::new_err("the segment writer's thread panicked"))?;
        }
        Ok(())
    }

    /// Data syncs (``fdatasync``) done so far.
    #[getter]
    fn data_syncs(&self) -> u64 {
        self.shared.data_syncs.load(Ordering::Relaxed)
    }

    /// Directory syncs (after creating a segment) done so far.
    #[getter]
    fn dir_syncs(&self) -> u64 {
        self.shared.dir_syncs.load(Ordering::Relaxed)
    }
}
