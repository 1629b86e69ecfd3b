//! The hub's logs for a C host: to standard error or to a callback, as the
//! host chooses (`chathub::logs` does the work). Process-wide: set up once,
//! before or after starting hubs.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use chathub::logs::{self, LogError, LogRecord};

use crate::cast;
use crate::guard;
use crate::hub::UserData;
use crate::result::{Failure, chathub_result};

/// Receives one log line. `level`: 1 error, 2 warn, 3 info, 4 debug, 5
/// trace; `target` (where it comes from, e.g. `chathub::cluster`) and
/// `message` (the text, then its fields as `key=value`) are NUL-terminated
/// UTF-8, valid until the callback returns. Runs on whichever thread logs
/// (the hub's threads, or the caller of a libchathub function), maybe on
/// several at once; it must not unwind and should return quickly.
pub type chathub_log_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: u32,
        target: *const c_char,
        message: *const c_char,
    ),
>;

/// The filter from C: NULL is `RUST_LOG` if set, else `info`.
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string.
unsafe fn filter_spec(filter: *const c_char) -> Result<String, Failure> {
    // SAFETY: the caller's contract.
    match unsafe { cast::optional_string(filter, "filter") }? {
        Some(f) => Ok(f.to_owned()),
        None => Ok(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())),
    }
}

fn failure(e: LogError) -> Failure {
    let code = match e {
        LogError::Filter { .. } => chathub_result::InvalidArgument,
        _ => chathub_result::Failed,
    };
    Failure::new(code, e.to_string())
}

/// Writes the hub's logs to standard error, one line each (colored only on
/// a terminal). `filter` as `RUST_LOG` takes it (`"info"`,
/// `"chathub=debug"`; NULL: `RUST_LOG`, else `"info"`). Once per process:
/// a second call (or one after `chathub_log_to_callback`) fails with
/// `CHATHUB_RESULT_FAILED`; a filter that does not parse with
/// `CHATHUB_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_log_to_stderr(filter: *const c_char) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above.
        let spec = unsafe { filter_spec(filter) }?;
        logs::to_stderr(&spec).map_err(failure)
    })
}

/// Writes the hub's logs to standard error as one JSON object per line
/// (`{"ts":…,"level":"info","target":"chathub::hub","message":"…",
/// "fields":{…}}`), for log collectors; otherwise as
/// `chathub_log_to_stderr` (filter, once per process).
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_log_to_stderr_json(filter: *const c_char) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above.
        let spec = unsafe { filter_spec(filter) }?;
        logs::to_stderr_as(&spec, logs::LogFormat::Json).map_err(failure)
    })
}

/// Hands the hub's logs to `callback` (see `chathub_log_callback`), with
/// `userdata`, filtered by `filter` as `chathub_log_to_stderr`. Once per
/// process, as `chathub_log_to_stderr`. `callback` NULL:
/// `CHATHUB_RESULT_NULL_PARAMETER`.
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string; `callback`, if not NULL,
/// may be called with `userdata` from any thread for the rest of the
/// process's life.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_log_to_callback(
    filter: *const c_char,
    callback: chathub_log_callback,
    userdata: *mut c_void,
) -> chathub_result {
    guard::result(|| {
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        // SAFETY: the caller's contract above.
        let spec = unsafe { filter_spec(filter) }?;
        let userdata = UserData(userdata);
        let sink = Arc::new(move |r: LogRecord| {
            let clean = |s: String| CString::new(s.replace('\0', "\\0")).unwrap_or_default();
            let (target, message) = (clean(r.target), clean(r.message));
            let userdata = userdata;
            // SAFETY: C gave this callback and userdata for exactly this
            // (the contract above); the strings live until it returns.
            unsafe { callback(userdata.0, r.level, target.as_ptr(), message.as_ptr()) };
        });
        logs::to_callback(&spec, sink).map_err(failure)
    })
}
