//! # libchathub: the C ABI of chathub
//!
//! A thin translation of the [`chathub`] host API into C: a C (or C++)
//! program links `libchathub` (`libchathub.a` or `libchathub.so`), includes
//! `include/chathub.h` (generated from this crate by cbindgen) and runs the
//! chat hub inside itself. No chat rule lives here: every rule is in the
//! core crate; this crate only checks what C hands it, converts, and calls
//! the core.
//!
//! ## Conventions (also in the README's C section)
//!
//! - Opaque handles: `chathub_config`, `chathub_hub`, `chathub_event`,
//!   `chathub_ack`. C sees only pointers to them.
//! - Names are `chathub_<type>_<verb>`; `_new`/`_start` pairs with `_free`,
//!   and every `_free` accepts NULL.
//! - The handle comes first, `out_` parameters last. An `out_` parameter is
//!   written only on success.
//! - Most functions return a [`chathub_result`]; [`chathub_result_text`]
//!   names a code and [`chathub_last_error_message`] gives the details of
//!   the last failure on the calling thread.
//! - Every exported function runs inside one panic guard (`guard`): a
//!   panic becomes `CHATHUB_RESULT_PANIC` (or NULL / 0 / nothing for
//!   functions that return no result), never an unwind into C.
//! - Every pointer is checked for NULL (`CHATHUB_RESULT_NULL_PARAMETER`) and
//!   every string for UTF-8 (`CHATHUB_RESULT_INVALID_UTF8`) before use. All
//!   raw-pointer casts live in one module, `cast`.
//! - Callbacks and hooks take a `void *userdata` and run on the hub's
//!   threads; each function's doc says which thread and for how long what
//!   it hands out stays valid.
//!
//! ## Modules
//!
//! - `result`: the result codes and their texts.
//! - `config`: `chathub_config`, what a hub starts from.
//! - `hub`: `chathub_hub`: start, port, stop, free, subscribe, hooks,
//!   actions.
//! - `event`: `chathub_event` accessors and `chathub_ack`.
//! - `log`: the hub's logs to standard error or a callback.
//! - `version`: the version macros, `chathub_version` and
//!   `chathub_version_check`.

// The C names are the ABI: `chathub_hub`, not `ChathubHub`.
#![allow(non_camel_case_types)]
// Every unsafe block says why it holds.
#![deny(clippy::undocumented_unsafe_blocks)]

mod cast;
mod config;
mod event;
mod guard;
mod hub;
mod json;
mod log;
mod result;
mod version;

pub use cast::chathub_bytes;
pub use config::*;
pub use event::*;
pub use hub::*;
pub use log::*;
pub use result::*;
pub use version::*;
