//! Placeholder until the bare-metal check lands (being written now).
pub fn run() -> crate::Result {
    Err("baremetal: not written yet".into())
}
