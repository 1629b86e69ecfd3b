//! The panic guard every exported function runs inside: no panic crosses
//! into C.
//!
//! [`result`] is for functions that return a [`chathub_result`]: the body
//! returns `Result<(), Failure>`, a failure is recorded for
//! `chathub_last_error_message` and its code returned, a panic becomes
//! `CHATHUB_RESULT_PANIC`. [`value`] is for functions that return something
//! else (a pointer, a number, nothing): a panic gives [`OnPanic::on_panic`]
//! (NULL, 0, false, nothing).

use std::any::Any;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::{Failure, chathub_result, set_last_error};

/// Runs `body`, catching any panic.
fn catch<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    // AssertUnwindSafe: after a panic the caller only gets a code back; no
    // state the panic may have left half-changed is read by this function.
    catch_unwind(AssertUnwindSafe(body)).map_err(|p| panic_text(&*p))
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("libchathub panicked: {msg}")
}

/// The guard of functions that return a [`chathub_result`].
pub(crate) fn result(body: impl FnOnce() -> Result<(), Failure>) -> chathub_result {
    match catch(body) {
        Ok(Ok(())) => chathub_result::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.detail);
            failure.code
        }
        Err(panic) => {
            set_last_error(&panic);
            chathub_result::Panic
        }
    }
}

/// What a function that returns no [`chathub_result`] gives after a panic.
pub(crate) trait OnPanic {
    /// The value returned when the body panicked.
    fn on_panic() -> Self;
}

impl OnPanic for () {
    fn on_panic() {}
}

impl OnPanic for bool {
    fn on_panic() -> bool {
        false
    }
}

impl OnPanic for u32 {
    fn on_panic() -> u32 {
        0
    }
}

impl OnPanic for usize {
    fn on_panic() -> usize {
        0
    }
}

impl OnPanic for *const c_char {
    fn on_panic() -> *const c_char {
        std::ptr::null()
    }
}

/// The guard of functions that return something other than a result.
pub(crate) fn value<T: OnPanic>(body: impl FnOnce() -> T) -> T {
    match catch(body) {
        Ok(v) => v,
        Err(panic) => {
            set_last_error(&panic);
            T::on_panic()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let code = result(|| panic!("inside"));
        assert_eq!(code, chathub_result::Panic);
        // SAFETY: valid until the next failure on this thread.
        let msg = unsafe { std::ffi::CStr::from_ptr(crate::chathub_last_error_message()) };
        assert_eq!(msg.to_str().unwrap(), "libchathub panicked: inside");
        let p: *const c_char = value(|| panic!("{}", String::from("owned")));
        assert!(p.is_null());
    }

    #[test]
    fn a_failure_keeps_its_code() {
        let code = result(|| Err(Failure::null("hub")));
        assert_eq!(code, chathub_result::NullParameter);
        assert_eq!(result(|| Ok(())), chathub_result::Ok);
    }
}
