//! Gives libchathub.so its SONAME, so that programs record the ABI they
//! were linked against, not the file name: `libchathub.so.MAJOR` from 1.0,
//! `libchathub.so.0.MINOR` while 0.x (each 0.x minor is its own ABI, as
//! `chathub_version_check` says). `make install` installs the file as
//! `libchathub.so.MAJOR.MINOR.PATCH` with the SONAME link and the
//! `libchathub.so` link beside it. Nothing else is built or written here.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let soname = if major == "0" {
        format!("libchathub.so.0.{minor}")
    } else {
        format!("libchathub.so.{major}")
    };
    // ELF platforms only (macOS names libraries with install_name).
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
