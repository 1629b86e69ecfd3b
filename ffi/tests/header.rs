//! `include/chathub.h` is generated from this crate by cbindgen and
//! committed. This test regenerates it and fails when the committed file
//! differs (a stale header); with `CHATHUB_BLESS=1` it rewrites the file
//! instead. No build script writes into the source tree.

use std::path::Path;

#[test]
fn the_committed_header_is_up_to_date() {
    let ffi = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(ffi.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not generate the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = ffi.join("../include/chathub.h");
    if std::env::var_os("CHATHUB_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("cannot write include/chathub.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/chathub.h is stale: regenerate it with \
         `CHATHUB_BLESS=1 cargo test -p chathub-ffi --test header` and commit it"
    );
}
