//! Python binding of the PINK kernel (`import pink_kernel`).
//!
//! The boundary passes serialized `pink.v1` protobuf messages as `bytes`
//! both ways, so Python and Rust share one contract and no struct is mirrored
//! by hand:
//!
//! * `Kernel(config)`: serialized `KernelConfig` in; every field violation is
//!   reported at once in a `KernelError`.
//! * `Kernel.step(input)`: serialized `KernelInput` in, serialized `Outcome`
//!   out. Field violations are an `INVALID_INPUT` outcome; bytes that are not
//!   a `KernelInput` at all raise `DecodeError`. A rejected input changes no
//!   state either way.
//! * `view(slots, account=, control=)`: post-state as a `KernelView`;
//!   `post_state()`: the view of what the last step touched.
//! * `replay(records)`: re-applies journaled `LogRecord`s, verifying outcomes;
//!   `replay_frames(frames)` does the same straight from journal segment bytes
//!   (ADR 0010), and `scan_frames(buf, expected)` validates such bytes.
//! * `snapshot` / `restore`, `state_hash`, `last_sequence`, `check_invariants`.
//! * `SegmentWriter`: the journal's appends and fsyncs on a thread that never
//!   takes the GIL (`writer.rs`, ADR 0012).
//!
//! Safety rules of the boundary:
//!
//! * No panic crosses into Python. Every call into the core runs inside
//!   `catch_unwind`; a caught panic marks the kernel *poisoned* and every later
//!   call raises `KernelError`: a kernel whose step was interrupted half-way
//!   may hold a half-applied state, so it is never used again silently.
//! * The kernel sits behind a `Mutex` in a frozen (immutable, `Sync`) class,
//!   so sharing one `Kernel` between Python threads is safe. No Python
//!   object is created or Python code run while the lock is held, so no
//!   thread can ever wait for the lock while holding the GIL that the lock's
//!   owner needs. Calls keep the GIL while they hold the lock, except
//!   `replay_frames`, which detaches first (pure Rust over immutable `bytes`)
//!   so the journal's read-ahead runs while it works.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

// catch_unwind is how no panic crosses into Python; with panic = "abort" a core bug
// would kill the whole Python process instead of poisoning one kernel.
#[cfg(panic = "abort")]
compile_error!("pink-kernel-py needs panic = \"unwind\": panics are caught at the Python boundary");

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use pink_core::output::Violation;

/// mimalloc rather than the system allocator: the step allocates and frees ids and
/// output buffers on every input, and glibc's malloc/free cost ~5 % of its
/// instructions (ADR 0011, fifth round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod writer;

create_exception!(
    pink_kernel,
    KernelError,
    PyValueError,
    "The kernel refused a configuration or snapshot, failed an invariant check, or is poisoned.\n\n\
     `violations` holds every (field, description) pair when the error is about fields."
);
create_exception!(
    pink_kernel,
    ReplayError,
    PyValueError,
    "A journal record did not decode, was out of sequence or did not reproduce its recorded outcome."
);
create_exception!(
    pink_kernel,
    DecodeError,
    PyValueError,
    "The bytes given to Kernel.step are not a serialized pink.v1.KernelInput; nothing changed."
);

/// Why a call failed, built while the lock is held; turned into a Python
/// exception only after the lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The config or snapshot has field violations.
    Invalid { what: &'static str, violations: Vec<(String, String)> },
    /// `step` got bytes that are not a `KernelInput`.
    Decode(String),
    /// An invariant check failed.
    Invariant(String),
    /// The kernel panicked now or earlier; it is unusable.
    Poisoned(String),
    /// Journal replay failed; the kernel must be discarded.
    Replay(String),
}

impl Failure {
    fn invalid(what: &'static str, violations: Vec<Violation>) -> Failure {
        Failure::Invalid { what, violations: violations.into_iter().map(|v| (v.field, v.description)).collect() }
    }

    fn message(&self) -> String {
        match self {
            Failure::Invalid { what, violations } => {
                let listed: Vec<String> = violations
                    .iter()
                    .map(
                        |(field, description)| {
                            if field.is_empty() {
                                description.clone()
                            } else {
                                format!("{field}: {description}")
                            }
                        },
                    )
                    .collect();
                format!("invalid {what}: {}", listed.join("; "))
            }
            Failure::Decode(message) => message.clone(),
            Failure::Invariant(reason) => format!("kernel invariant violated: {reason}"),
            Failure::Poisoned(reason) => format!("kernel poisoned by an internal error: {reason}"),
            Failure::Replay(reason) => format!("journal replay failed: {reason}"),
        }
    }

    fn into_py_err(self, py: Python<'_>) -> PyErr {
        let message = self.message();
        match self {
            Failure::Decode(_) => DecodeError::new_err(message),
            Failure::Replay(_) => ReplayError::new_err(message),
            Failure::Invalid { violations, .. } => kernel_error(py, message, &violations),
            Failure::Invariant(_) | Failure::Poisoned(_) => kernel_error(py, message, &[]),
        }
    }
}

/// A `KernelError` whose `violations` attribute is a tuple of
/// `(field, description)` tuples (empty when the error is not about fields).
fn kernel_error(py: Python<'_>, message: String, violations: &[(String, String)]) -> PyErr {
    let err = KernelError::new_err(message);
    let attached = PyTuple::new(py, violations.iter().map(|(f, d)| (f.as_str(), d.as_str())))
        .and_then(|tuple| err.value(py).setattr("violations", tuple));
    match attached {
        Ok(()) => err,
        // Setting an attribute on a fresh exception cannot normally fail; if
        // it does, report that failure rather than hide it.
        Err(other) => other,
    }
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Runs `f`, turning a panic into `Err(message)`.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| format!("panic: {}", panic_text(payload.as_ref())))
}

/// The `records` argument of `Kernel.replay`.
enum Records<'py> {
    /// A list of `bytes`: read in place, not copied.
    Bytes(Vec<Bound<'py, PyBytes>>),
    /// Any other sequence of bytes-like objects, as before.
    Copied(Vec<Vec<u8>>),
}

/// Extracts `records`; anything that is not a list of `bytes` takes the
/// general conversion (with its errors, reported for the argument as before).
fn records<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Records<'py>> {
    if let Ok(list) = obj.cast::<PyList>() {
        let items: Option<Vec<Bound<'py, PyBytes>>> = list.iter().map(|item| item.cast_into().ok()).collect();
        if let Some(items) = items {
            return Ok(Records::Bytes(items));
        }
    }
    obj.extract().map(Records::Copied)
}

/// What the lock protects.
struct State {
    kernel: pink_core::Kernel,
    /// Set when a call into the core panicked: the reason, for ever.
    poisoned: Option<String>,
}

/// The deterministic PINK kernel: serialized `pink.v1` messages in and out.
#[pyclass(frozen, module = "pink_kernel", name = "Kernel")]
struct Kernel {
    state: Mutex<State>,
}

impl Kernel {
    fn wrap(kernel: pink_core::Kernel) -> Kernel {
        Kernel { state: Mutex::new(State { kernel, poisoned: None }) }
    }

    /// Runs `f` on the kernel under the lock, with the poison rules: a
    /// poisoned kernel refuses every call, a panic poisons it. Pure Rust
    /// only: `f` must not touch Python.
    fn with<T>(&self, f: impl FnOnce(&mut pink_core::Kernel) -> Result<T, Failure>) -> Result<T, Failure> {
        let mut guard = self.state.lock().map_err(|_| Failure::Poisoned("the kernel lock is poisoned".to_owned()))?;
        let state = &mut *guard;
        if let Some(reason) = &state.poisoned {
            return Err(Failure::Poisoned(reason.clone()));
        }
        match guarded(|| f(&mut state.kernel)) {
            Ok(result) => result,
            Err(reason) => {
                state.poisoned = Some(reason.clone());
                Err(Failure::Poisoned(reason))
            }
        }
    }
}

#[pymethods]
impl Kernel {
    /// A fresh kernel from a serialized `pink.v1.KernelConfig`.
    #[new]
    fn new(py: Python<'_>, config: &[u8]) -> PyResult<Kernel> {
        let built = guarded(|| pink_core::Kernel::from_config_bytes(config))
            .map_err(Failure::Poisoned)
            .and_then(|result| result.map_err(|violations| Failure::invalid("pink.v1.KernelConfig", violations)));
        built.map(Kernel::wrap).map_err(|failure| failure.into_py_err(py))
    }

    /// Applies one serialized `pink.v1.KernelInput`; returns the serialized
    /// `pink.v1.Outcome`. Raises `DecodeError` (and changes nothing) when
    /// the bytes are not a `KernelInput`.
    fn step<'py>(&self, py: Python<'py>, input: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let outcome = self.with(|kernel| kernel.step_bytes(input).map_err(Failure::Decode));
        // The lock is released: now Python objects may be created.
        match outcome {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
            Err(failure) => Err(failure.into_py_err(py)),
        }
    }

    /// Post-state as a serialized `pink.v1.KernelView`: the given slots
    /// (unknown ids skipped), and the account and control when asked for.
    #[pyo3(signature = (slots, *, account = false, control = false))]
    fn view<'py>(
        &self,
        py: Python<'py>,
        slots: Vec<u32>,
        account: bool,
        control: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        match self.with(|kernel| Ok(kernel.view_bytes(&slots, account, control))) {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
            Err(failure) => Err(failure.into_py_err(py)),
        }
    }

    /// Post-state of what the last `step` touched, as a serialized
    /// `pink.v1.KernelView` (changed slots plus every slot of a revalued
    /// symbol; the account and control when they changed; empty after a
    /// rejection). This is what the kernel service attaches to a log record.
    fn post_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match self.with(|kernel| Ok(kernel.post_state_bytes())) {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
            Err(failure) => Err(failure.into_py_err(py)),
        }
    }

    /// Re-applies serialized `pink.v1.LogRecord`s from the journal in order,
    /// checking each input reproduces its recorded outcome exactly. Returns
    /// the last non-empty `venue_stream_position` (empty if none). Raises
    /// `ReplayError` on a record that does not decode, is out of sequence or
    /// diverges; the kernel must then be discarded.
    fn replay(&self, py: Python<'_>, #[pyo3(from_py_with = records)] records: Records<'_>) -> PyResult<String> {
        let result = self.with(|kernel| {
            match &records {
                Records::Bytes(list) => kernel.replay_records(list.iter().map(|r| r.as_bytes())),
                Records::Copied(list) => kernel.replay_records(list.iter().map(Vec::as_slice)),
            }
            .map_err(Failure::Replay)
        });
        result.map_err(|failure| failure.into_py_err(py))
    }

    /// Re-applies the journal segment frames in `frames[start:end]` (whole
    /// frames only, the first carrying `last_sequence + 1`) as `replay` does
    /// their records, checking each frame's length and sequence and, when
    /// `verify`, its checksum. Returns `(records replayed, last non-empty
    /// venue_stream_position)`. Runs without the GIL. Raises `ReplayError`
    /// at the first bad frame or record; the kernel must then be discarded.
    #[pyo3(signature = (frames, start = 0, end = None, *, verify = true))]
    fn replay_frames(
        &self,
        py: Python<'_>,
        frames: &Bound<'_, PyBytes>,
        start: usize,
        end: Option<usize>,
        verify: bool,
    ) -> PyResult<(u64, String)> {
        let bytes = frames.as_bytes();
        let end = end.unwrap_or(bytes.len());
        let Some(frames) = bytes.get(start..end) else {
            return Err(PyValueError::new_err(format!(
                "frames[{start}:{end}] is outside the {} bytes given",
                bytes.len()
            )));
        };
        // Immutable bytes, kept alive by the caller's reference: read without the GIL.
        // The lock is taken without the GIL and released before it is taken back.
        // A second core, if there is one, decodes ahead while this thread steps.
        let pipelined = std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1);
        let result =
            py.detach(|| self.with(|kernel| kernel.replay_frames(frames, verify, pipelined).map_err(Failure::Replay)));
        result.map_err(|failure| failure.into_py_err(py))
    }

    /// The whole state as a serialized `pink.v1.KernelSnapshot`.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match self.with(|kernel| Ok(kernel.snapshot_bytes())) {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
            Err(failure) => Err(failure.into_py_err(py)),
        }
    }

    /// A kernel from a serialized `pink.v1.KernelSnapshot`; every field and
    /// invariant is checked, an invalid snapshot raises `KernelError`.
    #[staticmethod]
    fn restore(py: Python<'_>, snapshot: &[u8]) -> PyResult<Kernel> {
        let restored = guarded(|| pink_core::Kernel::restore_bytes(snapshot))
            .map_err(Failure::Poisoned)
            .and_then(|result| result.map_err(|violations| Failure::invalid("pink.v1.KernelSnapshot", violations)));
        restored.map(Kernel::wrap).map_err(|failure| failure.into_py_err(py))
    }

    /// Hex SHA-256 of the canonical snapshot: equal states, equal hashes.
    fn state_hash(&self, py: Python<'_>) -> PyResult<String> {
        self.with(|kernel| Ok(kernel.state_hash())).map_err(|failure| failure.into_py_err(py))
    }

    /// Sequence of the last accepted input (0 before the first).
    #[getter]
    fn last_sequence(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(|kernel| Ok(kernel.last_sequence())).map_err(|failure| failure.into_py_err(py))
    }

    /// Checks every kernel invariant; raises `KernelError` with the reason.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.with(|kernel| kernel.check_invariants().map_err(Failure::Invariant))
            .map_err(|failure| failure.into_py_err(py))
    }

    fn __repr__(&self) -> String {
        let described = self.with(|kernel| Ok((kernel.config().kernel_id.to_string(), kernel.last_sequence())));
        match described {
            Ok((kernel_id, sequence)) => {
                format!("<pink_kernel.Kernel kernel_id={kernel_id:?} last_sequence={sequence}>")
            }
            Err(Failure::Poisoned(_)) => "<pink_kernel.Kernel poisoned>".to_owned(),
            Err(other) => format!("<pink_kernel.Kernel ({})>", other.message()),
        }
    }
}

/// What `scan_frames` returns: `(end, expected, index, index_at, stop)`.
type ScanResult = (usize, u64, Vec<(u64, usize)>, usize, Option<(&'static str, usize, String)>);

/// Validates the journal segment frames of `buf[start:]` (ADR 0005's
/// format): contiguous sequences from `expected`, and checksums when
/// `verify`. Returns `(end, expected, index, index_at, stop)`: the offset
/// after the last good frame, the sequence due there, the sparse index
/// entries `(sequence, offset)` (offsets in `buf`; the first frame at or
/// after `index_at`, then one at least `stride` bytes after the previous),
/// the offset the next entry is due from, and why the scan stopped early:
/// `None`, or `(kind, offset, reason)` with kind `"incomplete"`,
/// `"checksum"` or `"sequence"`. Runs without the GIL.
#[pyfunction]
#[pyo3(signature = (buf, expected, *, start = 0, verify = true, index_at = usize::MAX, stride = 65536))]
fn scan_frames(
    py: Python<'_>,
    buf: &Bound<'_, PyBytes>,
    expected: u64,
    start: usize,
    verify: bool,
    index_at: usize,
    stride: usize,
) -> PyResult<ScanResult> {
    use pink_core::frames::{scan, Stop};
    let bytes = buf.as_bytes();
    let Some(frames) = bytes.get(start..) else {
        return Err(PyValueError::new_err(format!("start {start} is beyond the {} bytes given", bytes.len())));
    };
    let found = py.detach(|| scan(frames, expected, verify, index_at.saturating_sub(start), stride));
    let at = |offset: usize| offset.saturating_add(start);
    let stop = found.stop.map(|stop| {
        let kind = match stop {
            Stop::Incomplete { .. } => "incomplete",
            Stop::Checksum { .. } => "checksum",
            Stop::Sequence { .. } => "sequence",
        };
        (kind, at(stop.offset()), stop.reason())
    });
    let index = found.index.into_iter().map(|(sequence, offset)| (sequence, at(offset))).collect();
    Ok((at(found.end), found.expected, index, at(found.index_at), stop))
}

#[pymodule]
#[pyo3(name = "pink_kernel")]
fn pink_kernel_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Kernel>()?;
    m.add_class::<writer::SegmentWriter>()?;
    m.add_function(wrap_pyfunction!(scan_frames, m)?)?;
    let kernel_error = py.get_type::<KernelError>();
    // Class-level default, so every KernelError has `violations`, even one raised from Python.
    kernel_error.setattr("violations", PyTuple::empty(py))?;
    m.add("KernelError", kernel_error)?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("ReplayError", py.get_type::<ReplayError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_failures_list_every_violation() {
        let failure = Failure::invalid(
            "pink.v1.KernelConfig",
            vec![
                Violation::new("config.kernel_id", "is required"),
                Violation::new("config.slot_count", "must be in 1..=100000, got 0"),
            ],
        );
        assert_eq!(
            failure.message(),
            "invalid pink.v1.KernelConfig: config.kernel_id: is required; config.slot_count: must be in 1..=100000, got 0"
        );
    }

    #[test]
    fn a_violation_without_field_is_its_description() {
        let failure =
            Failure::invalid("pink.v1.KernelConfig", vec![Violation::new("", "not a valid pink.v1.KernelConfig")]);
        assert_eq!(failure.message(), "invalid pink.v1.KernelConfig: not a valid pink.v1.KernelConfig");
    }

    #[test]
    fn panics_are_caught_with_their_text() {
        let caught = guarded(|| -> u32 { std::panic::panic_any("boom") });
        assert_eq!(caught, Err("panic: boom".to_owned()));
        let caught = guarded(|| -> u32 { std::panic::panic_any(String::from("owned boom")) });
        assert_eq!(caught, Err("panic: owned boom".to_owned()));
        assert_eq!(guarded(|| 7), Ok(7));
    }

    fn sample_kernel() -> Kernel {
        use prost::Message;
        let config = pink_core::snapshot::config_message(&pink_core::testkit::config(2)).encode_to_vec();
        Kernel::wrap(pink_core::Kernel::from_config_bytes(&config).expect("the sample config is valid"))
    }

    #[test]
    fn a_panic_poisons_the_kernel_for_ever() {
        let kernel = sample_kernel();
        assert_eq!(kernel.with(|k| Ok(k.last_sequence())), Ok(0));
        let result: Result<(), Failure> = kernel.with(|_| std::panic::panic_any("core bug"));
        assert_eq!(result, Err(Failure::Poisoned("panic: core bug".to_owned())));
        assert_eq!(kernel.with(|k| Ok(k.last_sequence())), Err(Failure::Poisoned("panic: core bug".to_owned())));
        assert_eq!(
            Failure::Poisoned("panic: core bug".to_owned()).message(),
            "kernel poisoned by an internal error: panic: core bug"
        );
    }

    #[test]
    fn undecodable_input_is_a_decode_failure_and_changes_nothing() {
        let kernel = sample_kernel();
        let before = kernel.with(|k| Ok(k.state_hash()));
        let result = kernel.with(|k| k.step_bytes(&[0xff, 0xff, 0xff]).map_err(Failure::Decode));
        assert!(matches!(result, Err(Failure::Decode(_))), "{result:?}");
        assert_eq!(kernel.with(|k| Ok(k.state_hash())), before);
    }
}
