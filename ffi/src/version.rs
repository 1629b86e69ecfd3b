//! The version of libchathub: the header's macros, the running library's
//! string, and the check that tells a program whether the library it runs
//! with is one its header was written for.
//!
//! The rule is semver's, and the SONAME follows it (`ffi/build.rs`): from
//! 1.0, one major version is one ABI (`libchathub.so.1`), and a minor
//! version only adds; while 0.x, each minor version is its own ABI
//! (`libchathub.so.0.1`) and a patch only adds.

use std::ffi::c_char;

use crate::guard;
use crate::result::{Failure, chathub_result};

/// The major version of the `chathub.h` a program was built with.
pub const CHATHUB_VERSION_MAJOR: u32 = 0;
/// The minor version of the `chathub.h` a program was built with.
pub const CHATHUB_VERSION_MINOR: u32 = 1;
/// The patch version of the `chathub.h` a program was built with.
pub const CHATHUB_VERSION_PATCH: u32 = 0;

/// The version of this library as numbers (`Cargo.toml`'s, which the
/// constants above must equal: a test checks it).
fn running() -> (u32, u32, u32) {
    let n = |s: &str| s.parse::<u32>().unwrap_or(0);
    (
        n(env!("CARGO_PKG_VERSION_MAJOR")),
        n(env!("CARGO_PKG_VERSION_MINOR")),
        n(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

/// Whether a library of version `lib` serves a program built against the
/// header of version `built` (see the module doc).
fn serves(lib: (u32, u32, u32), built: (u32, u32, u32)) -> bool {
    if lib.0 != built.0 {
        return false;
    }
    if lib.0 == 0 {
        lib.1 == built.1 && lib.2 >= built.2
    } else {
        (lib.1, lib.2) >= (built.1, built.2)
    }
}

/// The version of libchathub, a static NUL-terminated string such as
/// `"0.1.0"`. Never NULL; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn chathub_version() -> *const c_char {
    guard::value(|| concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

/// Checks that the libchathub running now serves a program built with the
/// header of version `major.minor.patch`: call it first with
/// `CHATHUB_VERSION_CHECK()`, which passes the header's
/// `CHATHUB_VERSION_…` macros. `CHATHUB_RESULT_OK` when it does (same
/// major version and at least the header's minor; while 0.x, the same
/// minor and at least its patch), else
/// `CHATHUB_RESULT_INCOMPATIBLE_VERSION` with both versions in
/// `chathub_last_error_message()`. The SONAME (`libchathub.so.0.1`, from
/// 1.0 `libchathub.so.1`) makes the dynamic loader refuse most mismatches
/// already; this catches the rest (a static library, a copied file).
#[unsafe(no_mangle)]
pub extern "C" fn chathub_version_check(major: u32, minor: u32, patch: u32) -> chathub_result {
    guard::result(|| {
        let lib = running();
        if serves(lib, (major, minor, patch)) {
            return Ok(());
        }
        Err(Failure::new(
            chathub_result::IncompatibleVersion,
            format!(
                "libchathub {}.{}.{} cannot serve a program built with chathub.h {major}.{minor}.{patch}",
                lib.0, lib.1, lib.2
            ),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_macros_are_the_crate_version() {
        assert_eq!(
            running(),
            (
                CHATHUB_VERSION_MAJOR,
                CHATHUB_VERSION_MINOR,
                CHATHUB_VERSION_PATCH
            ),
            "bump the CHATHUB_VERSION_… constants with Cargo.toml's version"
        );
    }

    #[test]
    fn semver_rules() {
        assert!(serves((0, 1, 2), (0, 1, 0)));
        assert!(serves((0, 1, 2), (0, 1, 2)));
        assert!(
            !serves((0, 1, 1), (0, 1, 2)),
            "a newer patch may add functions"
        );
        assert!(
            !serves((0, 2, 0), (0, 1, 0)),
            "0.x: each minor is its own ABI"
        );
        assert!(serves((1, 3, 0), (1, 2, 9)));
        assert!(!serves((1, 2, 0), (1, 3, 0)));
        assert!(!serves((2, 0, 0), (1, 0, 0)));
    }
}
