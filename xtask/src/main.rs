//! `cargo xtask <command>`: the project's build and test driver.
fn main() {}
