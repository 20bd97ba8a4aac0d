//! Hand-written protobuf for the hot paths. Encoding: an `Output` as a
//! `pink.v1.Outcome`, into a reused buffer. It writes exactly the bytes `encode::outcome(out, kernel_id).encode_to_vec()`
//! writes (prost: fields in tag order, proto3 defaults omitted, `optional`
//! fields written when set, packed repeated scalars), without building the
//! intermediate messages and their strings. Decoding: the common inputs
//! straight from the wire, borrowing their text. The tests check both
//! against prost.

mod input;
mod order_ids;
mod outcome;

pub use input::input;
pub(crate) use input::{input_known, Known};
pub(crate) use order_ids::OrderIds;
pub(crate) use outcome::outcome_at;
pub use outcome::outcome_into;

#[cfg(test)]
mod tests;
