//! The `quicseal` command (being written).
fn main() {}
