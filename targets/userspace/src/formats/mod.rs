//! The JSON files the `quicseal` command reads: test-vector files (vectors/README.md) and
//! seal and open jobs (docs/formats.md). Here rather than in the command so that fuzzing
//! reaches the parsers: every entry point takes a parsed document as well as a path, and
//! refuses bad input with an [`InputError`](json::InputError) that says where, never a
//! panic.

pub mod job;
pub mod json;
pub mod vectors;
