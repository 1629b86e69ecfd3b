//! Result codes: a stable `#[repr(u32)]` enum, its texts, and the details
//! of the last failure on a thread.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

use chathub::{AckError, ActionError, StartError, TlsError};

use crate::guard;

/// What a libchathub function did. The numbers are stable: new codes are
/// only ever added, never renumbered.
///
/// C sees this as `uint32_t` plus the `CHATHUB_RESULT_…` constants.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum chathub_result {
    /// It worked.
    Ok = 0,
    /// A required pointer argument was NULL. Nothing was done.
    NullParameter = 1,
    /// A string argument was not valid UTF-8. Nothing was done.
    InvalidUtf8 = 2,
    /// An argument was out of range or malformed (an address that does not
    /// parse, an unknown target or event kind, a placeholder naming a
    /// missing attachment, …). Nothing was done.
    InvalidArgument = 3,
    /// The hub is stopped (or stopping). Nothing was done.
    Closed = 4,
    /// libchathub panicked (a bug: please report it). The call had no
    /// effect that can be relied on; the handle may still be freed.
    Panic = 5,
    /// The config is not usable (the message says which value);
    /// `chathub_hub_start` started nothing.
    InvalidConfig = 6,
    /// The hub could not listen on its address (in use, no permission).
    BindFailed = 7,
    /// The system refused something (threads, files); see the message.
    Io = 8,
    /// The namespace is not one of the hub's.
    UnknownNamespace = 9,
    /// No socket with this id is connected to the namespace.
    SocketNotFound = 10,
    /// The room name breaks the chat's rules (empty, too long).
    InvalidRoom = 11,
    /// The event name is empty or reserved by Socket.IO.
    InvalidEventName = 12,
    /// A JSON text did not parse, or is not of the expected shape (the
    /// arguments must be a JSON array).
    InvalidJson = 13,
    /// The message could not be delivered (the socket is gone, or the
    /// adapter failed).
    DeliveryFailed = 14,
    /// This acknowledgement was answered already; nothing was sent.
    AlreadySent = 15,
    /// The event carries no acknowledgement (the client asked for none, or
    /// it was taken already).
    NoAck = 16,
    /// A failure with no code of its own; see the message.
    Failed = 17,
    /// The Redis of the config's Redis URL could not be reached (or
    /// refused us); `chathub_hub_start` started nothing.
    RedisUnavailable = 18,
    /// The library that runs is not one the program's `chathub.h` was
    /// written for (`chathub_version_check`); the message says both
    /// versions.
    IncompatibleVersion = 19,
    /// No answer came within the time given (`chathub_hub_emit_with_ack`).
    TimedOut = 20,
    /// The TLS certificate or key could not be read or used (unreadable
    /// file, no certificate, a key that does not match it); the message
    /// says which. A hub keeps serving the pair it had.
    Tls = 21,
}

/// How many result codes there are: every code is below it (C loops over
/// `0 .. CHATHUB_RESULT_COUNT - 1`).
pub const CHATHUB_RESULT_COUNT: u32 = 22;

impl chathub_result {
    /// Every code, in order of its number.
    const ALL: [chathub_result; CHATHUB_RESULT_COUNT as usize] = [
        chathub_result::Ok,
        chathub_result::NullParameter,
        chathub_result::InvalidUtf8,
        chathub_result::InvalidArgument,
        chathub_result::Closed,
        chathub_result::Panic,
        chathub_result::InvalidConfig,
        chathub_result::BindFailed,
        chathub_result::Io,
        chathub_result::UnknownNamespace,
        chathub_result::SocketNotFound,
        chathub_result::InvalidRoom,
        chathub_result::InvalidEventName,
        chathub_result::InvalidJson,
        chathub_result::DeliveryFailed,
        chathub_result::AlreadySent,
        chathub_result::NoAck,
        chathub_result::Failed,
        chathub_result::RedisUnavailable,
        chathub_result::IncompatibleVersion,
        chathub_result::TimedOut,
        chathub_result::Tls,
    ];

    /// The code with this number.
    fn from_u32(n: u32) -> Option<chathub_result> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// Its text: a static NUL-terminated English sentence (a new code
    /// does not compile without one).
    fn text(self) -> &'static str {
        match self {
            chathub_result::Ok => "ok\0",
            chathub_result::NullParameter => "a required pointer argument was NULL\0",
            chathub_result::InvalidUtf8 => "a string argument was not valid UTF-8\0",
            chathub_result::InvalidArgument => "an argument was out of range or malformed\0",
            chathub_result::Closed => "the hub is stopped\0",
            chathub_result::Panic => "libchathub panicked (a bug)\0",
            chathub_result::InvalidConfig => "the hub config is invalid\0",
            chathub_result::BindFailed => "the hub could not listen on its address\0",
            chathub_result::Io => "the system refused an operation\0",
            chathub_result::UnknownNamespace => "unknown namespace\0",
            chathub_result::SocketNotFound => "no such socket in the namespace\0",
            chathub_result::InvalidRoom => "invalid room name\0",
            chathub_result::InvalidEventName => {
                "invalid event name (empty or reserved by Socket.IO)\0"
            }
            chathub_result::InvalidJson => "invalid JSON (arguments must be a JSON array)\0",
            chathub_result::DeliveryFailed => "the message could not be delivered\0",
            chathub_result::AlreadySent => "the acknowledgement was already answered\0",
            chathub_result::NoAck => "the event has no acknowledgement to take\0",
            chathub_result::Failed => "the operation failed\0",
            chathub_result::RedisUnavailable => "Redis could not be reached\0",
            chathub_result::IncompatibleVersion => {
                "this libchathub is not the version the program was built for\0"
            }
            chathub_result::TimedOut => "no answer came in time\0",
            chathub_result::Tls => "the TLS certificate or key could not be used\0",
        }
    }
}

// `ALL` lists every code at the index of its number, and the count is right.
const _: () = {
    let mut i = 0;
    while i < chathub_result::ALL.len() {
        assert!(chathub_result::ALL[i] as usize == i);
        i += 1;
    }
    assert!(chathub_result::Tls as u32 + 1 == CHATHUB_RESULT_COUNT);
};

/// The text of a result code: a static NUL-terminated English sentence.
/// Never NULL, never free it; an unknown code gives `"unknown result code"`.
/// Takes any `uint32_t`, so C may pass whatever it stored.
#[unsafe(no_mangle)]
pub extern "C" fn chathub_result_text(result: u32) -> *const c_char {
    guard::value(|| {
        let text =
            chathub_result::from_u32(result).map_or("unknown result code\0", chathub_result::text);
        text.as_ptr().cast()
    })
}

/// The details of the most recent failure on the calling thread (for
/// example `invalid hub config: namespace "chat" must start with '/'`), or
/// `""` if no call on this thread has failed. The string belongs to
/// libchathub and stays valid until the next libchathub call that fails on
/// this same thread. Never NULL; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn chathub_last_error_message() -> *const c_char {
    guard::value(|| LAST_ERROR.with(|e| e.borrow().as_ptr()))
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Remembers `detail` as this thread's last error.
pub(crate) fn set_last_error(detail: &str) {
    let c = CString::new(detail.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// A failed call: its code and the details for
/// [`chathub_last_error_message`].
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: chathub_result,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn new(code: chathub_result, detail: impl Into<String>) -> Failure {
        Failure {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(chathub_result::NullParameter, format!("{what} is NULL"))
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Failure {
        Failure::new(chathub_result::InvalidArgument, detail)
    }
}

impl From<ActionError> for Failure {
    fn from(e: ActionError) -> Failure {
        let code = match &e {
            ActionError::Closed => chathub_result::Closed,
            ActionError::UnknownNamespace(_) => chathub_result::UnknownNamespace,
            ActionError::SocketNotFound { .. } => chathub_result::SocketNotFound,
            ActionError::InvalidRoom(_) => chathub_result::InvalidRoom,
            ActionError::InvalidEventName(_) => chathub_result::InvalidEventName,
            ActionError::Encode(_) => chathub_result::InvalidArgument,
            ActionError::Delivery(_) => chathub_result::DeliveryFailed,
            ActionError::AckTimeout(_) => chathub_result::TimedOut,
            ActionError::BadRequest(_) | ActionError::InvalidTarget(_) => {
                chathub_result::InvalidArgument
            }
            _ => chathub_result::Failed,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<StartError> for Failure {
    fn from(e: StartError) -> Failure {
        let code = match &e {
            StartError::InvalidConfig(_) => chathub_result::InvalidConfig,
            StartError::Bind { .. } => chathub_result::BindFailed,
            StartError::Runtime(_) | StartError::File { .. } => chathub_result::Io,
            StartError::Redis { .. } => chathub_result::RedisUnavailable,
            StartError::Tls(_) => chathub_result::Tls,
            _ => chathub_result::Failed,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<TlsError> for Failure {
    fn from(e: TlsError) -> Failure {
        let code = match &e {
            TlsError::NotConfigured => chathub_result::InvalidArgument,
            _ => chathub_result::Tls,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<AckError> for Failure {
    fn from(e: AckError) -> Failure {
        let code = match &e {
            AckError::AlreadySent => chathub_result::AlreadySent,
            AckError::Send(_) => chathub_result::DeliveryFailed,
        };
        Failure::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(code: u32) -> &'static str {
        // SAFETY: chathub_result_text returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(chathub_result_text(code)) }
            .to_str()
            .unwrap()
    }

    #[test]
    fn every_code_has_its_own_text() {
        let mut seen = std::collections::HashSet::new();
        for code in 0..CHATHUB_RESULT_COUNT {
            assert!(seen.insert(text(code)), "code {code} repeats a text");
            assert_ne!(text(code), "unknown result code");
        }
        assert_eq!(text(CHATHUB_RESULT_COUNT), "unknown result code");
        assert_eq!(text(9999), "unknown result code");
    }

    #[test]
    fn last_error_is_per_thread() {
        set_last_error("boom\0x");
        // SAFETY: the pointer is valid until the next failure on this thread.
        let here = unsafe { CStr::from_ptr(chathub_last_error_message()) };
        assert_eq!(here.to_str().unwrap(), "boom\\0x");
        std::thread::spawn(|| {
            // SAFETY: as above, on this other thread.
            let there = unsafe { CStr::from_ptr(chathub_last_error_message()) };
            assert_eq!(there.to_bytes(), b"");
        })
        .join()
        .unwrap();
    }
}
