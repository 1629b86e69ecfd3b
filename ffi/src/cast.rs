//! Every raw-pointer cast of libchathub, in one place, with the rules that
//! make each one sound.
//!
//! The rules C callers agree to (written in the header's docs):
//!
//! 1. A handle pointer (`chathub_config *`, `chathub_hub *`,
//!    `chathub_ack *`) is NULL or came from this library's `_new` / `_start`
//!    / `_take_ack`, and was not freed. A `chathub_event *` is the one a
//!    callback or hook was handed, used only during that call.
//! 2. A handle is not freed while another thread uses it. A
//!    `chathub_config` is used from one thread at a time.
//! 3. A string argument is NULL or points to a NUL-terminated string that
//!    stays unchanged for the duration of the call.
//! 4. An `out_` pointer is NULL or valid for writing one value.
//! 5. A `chathub_bytes` array holds `count` elements, each `data` valid for
//!    `len` bytes (or `len == 0`).
//!
//! Under these rules every function here is sound; NULL is always checked
//! and reported as `CHATHUB_RESULT_NULL_PARAMETER`, never dereferenced.

use std::ffi::{CStr, CString, c_char};
use std::ptr::NonNull;

use bytes::Bytes;

use crate::result::{Failure, chathub_result};

/// A C-visible opaque type and the Rust value behind its pointers.
pub(crate) trait Opaque {
    /// What a pointer to `Self` really points to.
    type Inner;
}

/// Moves `inner` to the heap and gives C its pointer; [`free`] takes it
/// back.
pub(crate) fn into_raw<H: Opaque>(inner: H::Inner) -> *mut H {
    Box::into_raw(Box::new(inner)).cast::<H>()
}

/// Lends C a pointer to a value that lives on the Rust side (an event
/// during a callback). C must not keep it past the call (rule 1).
pub(crate) fn lend<H: Opaque>(inner: &H::Inner) -> *const H {
    (inner as *const H::Inner).cast::<H>()
}

/// The value behind a handle, or `NullParameter` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `H` (rules 1 and 2), and no
/// `&mut` to it exists for `'a`.
pub(crate) unsafe fn borrow<'a, H: Opaque>(
    ptr: *const H,
    what: &str,
) -> Result<&'a H::Inner, Failure> {
    let ptr = ptr.cast::<H::Inner>();
    // SAFETY: by rule 1 a non-NULL `ptr` points to a live `H::Inner` (made
    // by `into_raw` or lent by `lend`); `as_ref` turns NULL into None.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// The value behind a handle, mutably, or `NullParameter` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `H` made by [`into_raw`], and no
/// other reference to it exists for `'a` (rule 2: one thread at a time).
pub(crate) unsafe fn borrow_mut<'a, H: Opaque>(
    ptr: *mut H,
    what: &str,
) -> Result<&'a mut H::Inner, Failure> {
    let ptr = ptr.cast::<H::Inner>();
    // SAFETY: by rules 1 and 2 a non-NULL `ptr` points to a live, unshared
    // `H::Inner`; `as_mut` turns NULL into None.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// Takes back a handle made by [`into_raw`]; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle made by `into_raw::<H>` that no other
/// thread uses; it must not be used again.
pub(crate) unsafe fn take<H: Opaque>(ptr: *mut H) -> Option<Box<H::Inner>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` came from `Box::into_raw` of an `H::Inner` (rule 1) and
    // ownership comes back exactly once (the caller's contract).
    Some(unsafe { Box::from_raw(ptr.cast::<H::Inner>()) })
}

/// A string argument as `&str`: `NullParameter` for NULL, `InvalidUtf8`
/// when it is not UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string unchanged for `'a` (rule 3).
pub(crate) unsafe fn string<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by rule 3.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|e| {
        Failure::new(
            chathub_result::InvalidUtf8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Like [`string`], but NULL is allowed and gives `None`.
///
/// # Safety
/// As [`string`].
pub(crate) unsafe fn optional_string<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: the caller's contract is the same as `string`'s.
        unsafe { string(ptr, what) }.map(Some)
    }
}

/// An `out_` parameter, checked for NULL before any work is done and
/// written once the work succeeded.
#[derive(Debug)]
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Writes the value (without reading or dropping what was there).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `out` only builds an `Out` from a non-NULL pointer that
        // the caller promised valid for writing one `T` (rule 4).
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Checks an `out_` pointer.
///
/// # Safety
/// `ptr` is NULL or valid for writing one `T` until the call returns.
pub(crate) unsafe fn out<T>(ptr: *mut T, what: &str) -> Result<Out<T>, Failure> {
    NonNull::new(ptr)
        .map(Out)
        .ok_or_else(|| Failure::null(what))
}

/// Binary data handed over by C: a pointer and a length.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct chathub_bytes {
    /// The first byte (may be NULL when `len` is 0).
    pub data: *const u8,
    /// How many bytes.
    pub len: usize,
}

/// Copies `len` bytes from `data` (NULL with a length of 0 is empty).
///
/// # Safety
/// `data` is NULL or valid for reading `len` bytes during the call.
pub(crate) unsafe fn byte_vec(data: *const u8, len: usize, what: &str) -> Result<Vec<u8>, Failure> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if data.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and valid for `len` bytes by the caller's contract;
    // copied at once.
    Ok(unsafe { std::slice::from_raw_parts(data, len) }.to_vec())
}

/// Copies `count` byte strings (`attachments`); NULL with a count of 0 is
/// an empty list.
///
/// # Safety
/// `list` is NULL (then `count` must be 0) or valid for `count` elements,
/// each valid for its `len` bytes (rule 5).
pub(crate) unsafe fn bytes_list(
    list: *const chathub_bytes,
    count: usize,
    what: &str,
) -> Result<Vec<Bytes>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and valid for `count` elements by rule 5.
    let items = unsafe { std::slice::from_raw_parts(list, count) };
    items
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if b.len == 0 {
                return Ok(Bytes::new());
            }
            if b.data.is_null() {
                return Err(Failure::null(&format!("{what}[{i}].data")));
            }
            // SAFETY: non-NULL and valid for `len` bytes by rule 5; copied
            // at once, so nothing is kept past the call.
            let slice = unsafe { std::slice::from_raw_parts(b.data, b.len) };
            Ok(Bytes::copy_from_slice(slice))
        })
        .collect()
}

/// Hands C an owned NUL-terminated copy of `text` (which has no NUL:
/// JSON from serde_json escapes it); [`free_string`] takes it back.
pub(crate) fn owned_string(text: String) -> Result<*mut c_char, Failure> {
    CString::new(text)
        .map(CString::into_raw)
        .map_err(|_| Failure::new(chathub_result::Failed, "text with a NUL byte"))
}

/// Frees a string made by [`owned_string`]; NULL is fine.
///
/// # Safety
/// `ptr` is NULL or came from `owned_string` and was not freed.
pub(crate) unsafe fn free_string(ptr: *mut c_char) {
    if !ptr.is_null() {
        // SAFETY: made by `CString::into_raw` and returned exactly once.
        drop(unsafe { CString::from_raw(ptr) });
    }
}

/// A NUL-terminated byte string kept on the Rust side and lent to C.
#[derive(Debug, Clone)]
pub(crate) struct CText(Box<[u8]>);

impl CText {
    /// Copies `s` and appends a NUL (a NUL inside `s` stays: C sees the
    /// string up to it, and the full length through the accessor's
    /// `out_len`).
    pub(crate) fn new(s: &str) -> CText {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        CText(v.into_boxed_slice())
    }

    /// The pointer C reads (valid while `self` lives).
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }

    /// The length in bytes, without the final NUL.
    pub(crate) fn len(&self) -> usize {
        self.0.len() - 1
    }
}

/// A zeroed buffer a C hook may write a NUL-terminated reason into.
pub(crate) fn c_buffer(buf: &mut [u8]) -> *mut c_char {
    buf.as_mut_ptr().cast()
}
