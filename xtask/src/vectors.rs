//! Placeholder until the generator lands (being written now).
pub fn run(_args: &[String]) -> crate::Result {
    Err("vectors: not written yet".into())
}
