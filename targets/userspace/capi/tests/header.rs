//! `include/quicseal.h` is exactly what cbindgen generates from `src/` with `cbindgen.toml`.
//! Set `QUICSEAL_UPDATE_HEADER=1` (or run `cargo xtask capi --update-header`) to rewrite it.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include/quicseal.h");
    if std::env::var_os("QUICSEAL_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("include/quicseal.h is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what cbindgen generates from src/: run `cargo xtask capi --update-header` \
         and commit the result",
        path.display()
    );
}
