//! `chathub_hub`: a running hub (a `chathub::Hub`) and what C does with
//! it: start, port, stop, free; observe (event callbacks); decide (connect
//! and login hooks); act (emit, join, leave, disconnect, list).
//!
//! Threads: event callbacks run on a thread of their own per subscription
//! (`chathub-N-events`), one event at a time, in the hub's order. Hooks run
//! on the hub's blocking-pool threads (`chathub-N`), possibly several at
//! once. Neither ever runs on the thread that called into libchathub, and
//! none runs after `chathub_hub_stop` (or `chathub_hub_free`) has returned
//! on a thread outside them.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};

use chathub::{
    ConnectHook, ConnectRequest, EventFilter, EventKinds, HookResult, Hub, LoginHook, LoginRequest,
    Subscription, Target,
};

use crate::cast::{self, Opaque, chathub_bytes};
use crate::config::chathub_config;
use crate::event::{CHATHUB_KIND_ALL, EventView, chathub_event};
use crate::guard;
use crate::json;
use crate::result::{Failure, chathub_result};

/// A running hub (opaque). Thread-safe: every function but
/// `chathub_hub_free` may be called from any thread at any time, also from
/// inside callbacks and hooks.
#[derive(Debug)]
pub struct chathub_hub {
    _private: [u8; 0],
}

impl Opaque for chathub_hub {
    type Inner = HubHandle;
}

/// Where `chathub_hub_emit` sends (its `target` argument).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum chathub_target {
    /// One socket: `to` is its id.
    Socket = 0,
    /// Every socket in a room: `to` is the room.
    Room = 1,
    /// Every socket in the lobby (in no room) of a chat namespace; `to`
    /// is ignored (may be NULL). A host namespace has no lobby
    /// (`CHATHUB_RESULT_INVALID_ARGUMENT`).
    Lobby = 2,
    /// Every socket of the namespace; `to` is ignored (may be NULL).
    Namespace = 3,
}

/// Receives the hub's events. `userdata` is the pointer given to
/// `chathub_hub_subscribe`; `event` and its strings are valid until the
/// callback returns. Runs on the subscription's own thread, one event at
/// a time. It must not unwind (no C++ exception, no `longjmp`) out of the
/// callback, must not call `chathub_hub_free` on its own hub, and must not
/// wait for a thread that is inside `chathub_hub_stop` of its hub (that
/// stop waits for the callback).
pub type chathub_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const chathub_event)>;

/// Accepts (returns true) or refuses (returns false) a connection or a
/// login. `request` is a `chathub_event` of kind CONNECT (ns, sid,
/// auth_json, remote_addr) or LOGIN (ns, sid, name asked for,
/// previous_name), valid until the hook returns. To give a reason for a
/// refusal, write a NUL-terminated UTF-8 text of at most `reason_len`
/// bytes (NUL included) into `reason`; it reaches the client as its
/// `connect_error` message or as `Error: login refused: REASON` (empty:
/// `refused`). Runs on a hub thread, maybe on several at once; a hook that
/// takes longer than the config's hook timeout is refused by the hub (the
/// call still runs to its end). It must not unwind, and must not wait for
/// a thread that is stopping this hub.
pub type chathub_hook = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        request: *const chathub_event,
        reason: *mut c_char,
        reason_len: usize,
    ) -> bool,
>;

/// The size of the `reason` buffer a hook is handed.
pub const CHATHUB_REASON_MAX: usize = 256;

/// C's `userdata`, carried to the hub's threads. C promises (in the docs of
/// `chathub_hub_subscribe` and the hook setters) that it may be used from
/// them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: libchathub never dereferences the pointer; it only hands it back
// to C's callback on a hub thread, which the API documents, and C agrees to
// by passing it.
unsafe impl Send for UserData {}
// SAFETY: as for Send: the pointer is only copied and handed back.
unsafe impl Sync for UserData {}

thread_local! {
    /// The id of the hub whose callback or hook this thread is running now
    /// (0: none).
    static IN_CALLBACK: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` (a call into C) marked as inside a callback of `hub_id`.
fn in_callback<R>(hub_id: u64, f: impl FnOnce() -> R) -> R {
    let before = IN_CALLBACK.with(|c| c.replace(hub_id));
    let r = f();
    IN_CALLBACK.with(|c| c.set(before));
    r
}

fn inside_callback_of(hub_id: u64) -> bool {
    IN_CALLBACK.with(|c| c.get()) == hub_id
}

/// Counts hook calls into C that are running, and closes at stop: after
/// [`CallGate::close_and_wait`] no hook call runs or starts.
#[derive(Debug, Default)]
struct CallGate {
    state: Mutex<GateState>,
    idle: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    in_flight: usize,
}

/// One hook call in flight; dropping it lets a stop go on.
struct GatePass<'a>(&'a CallGate);

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl CallGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self) -> Option<GatePass<'_>> {
        let mut s = self.lock();
        if s.closed {
            return None;
        }
        s.in_flight += 1;
        Some(GatePass(self))
    }

    fn close_and_wait(&self) {
        let mut s = self.lock();
        s.closed = true;
        while s.in_flight > 0 {
            s = self.idle.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Threads the C face runs for a hub.
#[derive(Debug, Default)]
struct Threads {
    /// One per subscription: reads events and calls C's callback.
    dispatchers: Vec<JoinHandle<()>>,
    /// A stop asked for from inside a callback runs here.
    stopper: Option<JoinHandle<()>>,
}

/// The Rust side of a `chathub_hub`.
#[derive(Debug)]
pub(crate) struct HubHandle {
    hub: Hub,
    gate: Arc<CallGate>,
    threads: Mutex<Threads>,
    /// Held for a whole stop, so that a second `stop` returns only once the
    /// first one is complete.
    stopping: Mutex<()>,
}

impl HubHandle {
    fn threads(&self) -> MutexGuard<'_, Threads> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the hub and waits until no callback or hook of it runs; from
    /// inside one, only asks for the stop.
    fn stop(&self) {
        if inside_callback_of(self.hub.id()) {
            self.request_stop();
            return;
        }
        let _one_at_a_time = self.stopping.lock().unwrap_or_else(|e| e.into_inner());
        // The core's graceful stop; it ends every subscription, after the
        // events already queued.
        self.hub.shutdown();
        self.gate.close_and_wait();
        let threads = std::mem::take(&mut *self.threads());
        for t in threads.dispatchers {
            let _ = t.join();
        }
        if let Some(t) = threads.stopper {
            let _ = t.join();
        }
    }

    /// Starts the core's stop on a thread of its own (a callback must not
    /// wait for the stop: the stop waits for the callback).
    fn request_stop(&self) {
        let mut threads = self.threads();
        if threads.stopper.is_some() {
            return;
        }
        let hub = self.hub.clone();
        let spawned = thread::Builder::new()
            .name(format!("chathub-{}-stop", self.hub.id()))
            .spawn(move || hub.shutdown());
        match spawned {
            Ok(t) => threads.stopper = Some(t),
            Err(e) => {
                // No thread to spare: stop from here. On a dispatcher thread
                // this waits for the stop (the stop needs no callback); on a
                // hook thread the core only asks for it.
                drop(threads);
                eprintln!("libchathub: no thread to stop the hub in the background ({e})");
                self.hub.shutdown();
            }
        }
    }
}

/// Polls `fut` to completion on this thread, parking between polls. The
/// core's action futures need no runtime of their own (they wait on the
/// hub's, which runs on other threads).
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}

/// Runs `f` on the hub behind `hub` (checked for NULL).
///
/// # Safety
/// `hub` is NULL or a live hub.
unsafe fn with_hub(
    hub: *const chathub_hub,
    f: impl FnOnce(&HubHandle) -> Result<(), Failure>,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above.
        let h = unsafe { cast::borrow(hub, "hub") }?;
        f(h)
    })
}

/// Starts a hub from `config` (copied: the caller still owns and frees the
/// config) on a runtime and threads of its own, and writes it to
/// `*out_hub` once it accepts connections. Blocks for that short while.
///
/// Ownership: the caller owns the hub and frees it with
/// `chathub_hub_free`. Failures: `CHATHUB_RESULT_INVALID_CONFIG`,
/// `CHATHUB_RESULT_BIND_FAILED`, `CHATHUB_RESULT_IO` (details in
/// `chathub_last_error_message`); nothing is left running.
///
/// # Safety
/// `config` is NULL or a live config; `out_hub` is NULL or valid for
/// writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_start(
    config: *const chathub_config,
    out_hub: *mut *mut chathub_hub,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (config, out) = unsafe {
            (
                cast::borrow(config, "config")?,
                cast::out(out_hub, "out_hub")?,
            )
        };
        let hub = Hub::start(config.clone())?;
        out.write(cast::into_raw(HubHandle {
            hub,
            gate: Arc::default(),
            threads: Mutex::default(),
            stopping: Mutex::default(),
        }));
        Ok(())
    })
}

/// Writes the port the hub listens on to `*out_port` (the one the system
/// picked when the config asked for port 0). Works until the hub is freed,
/// stopped or not.
///
/// # Safety
/// `hub` is NULL or a live hub; `out_port` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_port(
    hub: *const chathub_hub,
    out_port: *mut u16,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, out) = unsafe { (cast::borrow(hub, "hub")?, cast::out(out_port, "out_port")?) };
        let addr = h
            .hub
            .local_addr()
            .ok_or_else(|| Failure::new(chathub_result::Failed, "the hub has no listener"))?;
        out.write(addr.port());
        Ok(())
    })
}

/// Writes how many sockets are connected now, over all namespaces, to
/// `*out_count`.
///
/// # Safety
/// `hub` is NULL or a live hub; `out_count` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_socket_count(
    hub: *const chathub_hub,
    out_count: *mut usize,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, out) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::out(out_count, "out_count")?,
            )
        };
        out.write(h.hub.socket_count());
        Ok(())
    })
}

/// Stops the hub gracefully and waits until it has stopped: no new
/// connections; every socket is disconnected (its client sees
/// `io server disconnect`, the others the disconnect notices, which the
/// callbacks still receive); then the connections close and the runtime
/// stops, within the config's shutdown timeout.
///
/// **Guarantee:** once it returns, no event callback and no hook of this
/// hub runs any more, and none will. Every later action returns
/// `CHATHUB_RESULT_CLOSED`. Safe to call twice, and from several threads
/// (each returns once the stop is complete).
///
/// Called from inside one of this hub's callbacks or hooks it cannot wait
/// (the stop waits for the callbacks): it only asks for the stop and
/// returns `CHATHUB_RESULT_OK` at once; callbacks may still run after
/// it. Call `chathub_hub_stop` or `chathub_hub_free` from another thread
/// to wait for the end.
///
/// # Safety
/// `hub` is NULL or a live hub.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_stop(hub: *const chathub_hub) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe {
        with_hub(hub, |h| {
            h.stop();
            Ok(())
        })
    }
}

/// Stops the hub if it is running (as `chathub_hub_stop`, waiting) and
/// frees it. NULL is fine. The hub must not be used again, and no other
/// thread may be using it. Must not be called from inside one of the
/// hub's own callbacks or hooks: there it only asks for the stop and the
/// handle is never freed (a leak, not a crash).
///
/// # Safety
/// `hub` is NULL or a live hub from `chathub_hub_start`, not used by any
/// other thread now or later.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_free(hub: *mut chathub_hub) {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        let Ok(h) = (unsafe { cast::borrow(hub.cast_const(), "hub") }) else {
            return;
        };
        if inside_callback_of(h.hub.id()) {
            h.request_stop();
            return;
        }
        // SAFETY: the caller's contract above: nobody else uses it, and it
        // is not used again.
        if let Some(h) = unsafe { cast::take(hub) } {
            h.stop();
        }
    })
}

/// Calls `callback(userdata, event)` for every event of the kinds in
/// `kinds` (a mask of `CHATHUB_KIND_…` values, or
/// `CHATHUB_KIND_ALL`) from now until the hub stops. Several
/// subscriptions may coexist; each has its own thread and queue.
///
/// Threads: the callback runs on the subscription's thread
/// (`chathub-N-events`), one event at a time, in the order the hub
/// produced them; `userdata` must be usable there. The hub never waits for
/// a callback: if one is slow and its queue (the config's event queue
/// capacity) fills up, further events for it are dropped; the chat goes on.
/// No callback runs once `chathub_hub_stop` has returned.
///
/// `CHATHUB_RESULT_INVALID_ARGUMENT` for an empty mask or unknown bits,
/// `CHATHUB_RESULT_CLOSED` after stop.
///
/// # Safety
/// `hub` is NULL or a live hub; `userdata` may be anything C likes, and is
/// handed back unchanged on the subscription's thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_subscribe(
    hub: *const chathub_hub,
    kinds: u32,
    callback: chathub_event_callback,
    userdata: *mut c_void,
) -> chathub_result {
    let userdata = UserData(userdata);
    // SAFETY: the caller's contract above.
    unsafe {
        with_hub(hub, |h| {
            let callback = callback.ok_or_else(|| Failure::null("callback"))?;
            if kinds == 0 || kinds & !CHATHUB_KIND_ALL != 0 {
                return Err(Failure::invalid(format!(
                    "kinds {kinds:#x} is not a non-empty mask of CHATHUB_KIND_* bits"
                )));
            }
            // Under the lock, so that a stop either sees this dispatcher or
            // makes the subscription fail.
            let mut threads = h.threads();
            let sub = h
                .hub
                .subscribe(EventFilter::kinds(EventKinds::from_bits_truncate(kinds)))?;
            let id = h.hub.id();
            let t = thread::Builder::new()
                .name(format!("chathub-{id}-events"))
                .spawn(move || dispatch(id, sub, callback, userdata))
                .map_err(|e| {
                    Failure::new(
                        chathub_result::Io,
                        format!("cannot start the event thread: {e}"),
                    )
                })?;
            threads.dispatchers.push(t);
            Ok(())
        })
    }
}

type EventFn = unsafe extern "C" fn(*mut c_void, *const chathub_event);

/// A subscription's thread: hands each event to C until the hub stops.
fn dispatch(hub_id: u64, mut sub: Subscription, callback: EventFn, userdata: UserData) {
    while let Some(event) = sub.blocking_recv() {
        let view = std::panic::catch_unwind(|| EventView::from_event(event));
        let Ok(view) = view else {
            continue; // a bug in the conversion; the panic hook printed it
        };
        in_callback(hub_id, || {
            // SAFETY: `callback` is the function C registered, called with
            // the userdata it gave and an event that lives until it
            // returns (C must not keep it, as documented).
            unsafe { callback(userdata.0, cast::lend(&view)) }
        });
    }
    let dropped = sub.dropped();
    if dropped > 0 {
        eprintln!("libchathub: a slow event callback lost {dropped} events");
    }
}

type HookFn = unsafe extern "C" fn(*mut c_void, *const chathub_event, *mut c_char, usize) -> bool;

/// Calls a C hook on this (blocking-pool) thread, unless the hub is past
/// its stop.
fn call_hook(
    hub_id: u64,
    gate: &CallGate,
    hook: HookFn,
    userdata: UserData,
    request: &EventView,
) -> HookResult {
    let Some(_pass) = gate.enter() else {
        return Err(chathub::hooks::FAILED.into());
    };
    let mut reason = [0u8; CHATHUB_REASON_MAX];
    let accepted = in_callback(hub_id, || {
        // SAFETY: `hook` is the function C registered, called with the
        // userdata it gave, a request that lives until it returns, and a
        // zeroed buffer of `reason.len()` bytes it may write into.
        unsafe {
            hook(
                userdata.0,
                cast::lend(request),
                cast::c_buffer(&mut reason),
                reason.len(),
            )
        }
    });
    if accepted {
        Ok(())
    } else {
        let end = reason.iter().position(|&b| b == 0).unwrap_or(reason.len());
        // An empty reason: the hub's own text (`chathub::hooks::REFUSED`).
        Err(String::from_utf8_lossy(&reason[..end]).trim().to_owned())
    }
}

/// Runs a hook call on the hub's blocking pool, so that a slow C hook never
/// holds a runtime worker.
async fn off_the_runtime(job: impl FnOnce() -> HookResult + Send + 'static) -> HookResult {
    tokio::task::spawn_blocking(job)
        .await
        .unwrap_or_else(|_| Err(chathub::hooks::FAILED.into()))
}

fn connect_hook(h: &HubHandle, hook: HookFn, userdata: UserData) -> ConnectHook {
    let hub_id = h.hub.id();
    let gate = h.gate.clone();
    chathub::hooks::connect_hook(move |req: ConnectRequest| {
        let gate = gate.clone();
        off_the_runtime(move || {
            let request = EventView::from_connect_request(&req);
            call_hook(hub_id, &gate, hook, userdata, &request)
        })
    })
}

fn login_hook(h: &HubHandle, hook: HookFn, userdata: UserData) -> LoginHook {
    let hub_id = h.hub.id();
    let gate = h.gate.clone();
    chathub::hooks::login_hook(move |req: LoginRequest| {
        let gate = gate.clone();
        off_the_runtime(move || {
            let request = EventView::from_login_request(&req);
            call_hook(hub_id, &gate, hook, userdata, &request)
        })
    })
}

/// Sets the hook that accepts or refuses connections (for connections
/// made from now on); NULL `hook` removes it (every connection is
/// accepted). See `chathub_hook` for its thread and reason. `userdata` must
/// be usable from the hub's threads until the hook is replaced or the hub
/// stopped.
///
/// # Safety
/// `hub` is NULL or a live hub.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_set_connect_hook(
    hub: *const chathub_hub,
    hook: chathub_hook,
    userdata: *mut c_void,
) -> chathub_result {
    let userdata = UserData(userdata);
    // SAFETY: the caller's contract above.
    unsafe {
        with_hub(hub, |h| {
            let hook = hook.map(|f| connect_hook(h, f, userdata));
            h.hub.set_connect_hook(hook)?;
            Ok(())
        })
    }
}

/// Sets the hook that accepts or refuses logins (names are already checked
/// and trimmed by the chat); NULL removes it. Same rules as
/// `chathub_hub_set_connect_hook`. A refusal reaches the client as
/// `Error: login refused: REASON`.
///
/// # Safety
/// `hub` is NULL or a live hub.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_set_login_hook(
    hub: *const chathub_hub,
    hook: chathub_hook,
    userdata: *mut c_void,
) -> chathub_result {
    let userdata = UserData(userdata);
    // SAFETY: the caller's contract above.
    unsafe {
        with_hub(hub, |h| {
            let hook = hook.map(|f| login_hook(h, f, userdata));
            h.hub.set_login_hook(hook)?;
            Ok(())
        })
    }
}

/// Emits `event` to a target in namespace `ns`: `target` is a
/// `CHATHUB_TARGET_…` value and `to` the socket id (SOCKET) or room (ROOM),
/// ignored for LOBBY and NAMESPACE. `args_json` is a JSON array, each
/// element one argument (`"[\"hello\"]"`, `"[]"` for none), with Socket.IO
/// placeholders `{"_placeholder":true,"num":N}` for the `attachment_count`
/// binary `attachments` (NULL with a count of 0 when none).
///
/// Returns once checked; delivery happens on the hub's threads, in the
/// order of the emits. Everything is copied. An emit to a socket that is
/// gone is dropped silently (as in socket.io). Failures:
/// `CHATHUB_RESULT_UNKNOWN_NAMESPACE`, `…_INVALID_ROOM`,
/// `…_INVALID_EVENT_NAME` (empty or reserved: `connect`, `disconnect`, …),
/// `…_INVALID_JSON`, `…_INVALID_ARGUMENT`, `…_CLOSED`.
///
/// # Safety
/// `hub` is NULL or a live hub; the strings are NULL or NUL-terminated;
/// `attachments` is NULL or valid for `attachment_count` elements.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn chathub_hub_emit(
    hub: *const chathub_hub,
    target: u32,
    ns: *const c_char,
    to: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    attachments: *const chathub_bytes,
    attachment_count: usize,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, ns, to, event, args, bins) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::string(ns, "ns")?,
                cast::optional_string(to, "to")?,
                cast::string(event, "event")?,
                cast::string(args_json, "args_json")?,
                cast::bytes_list(attachments, attachment_count, "attachments")?,
            )
        };
        let needs_to = |what: &str| to.ok_or_else(|| Failure::null(what));
        let target = match target {
            t if t == chathub_target::Socket as u32 => Target::socket(ns, needs_to("to")?),
            t if t == chathub_target::Room as u32 => Target::room(ns, needs_to("to")?),
            t if t == chathub_target::Lobby as u32 => Target::lobby(ns),
            t if t == chathub_target::Namespace as u32 => Target::namespace(ns),
            other => {
                return Err(Failure::invalid(format!(
                    "target {other} is not a CHATHUB_TARGET_* value"
                )));
            }
        };
        let args = json::parse_args(args, &bins)?;
        h.hub.emit(target, event, args)?;
        Ok(())
    })
}

/// Sends `event` to socket `sid` of namespace `ns` and waits, up to
/// `timeout_ms`, for its client's acknowledgement (socket.io's
/// `emitWithAck`); arguments as `chathub_hub_emit`. When the answer comes,
/// `on_answer` runs once, on the calling thread, before this returns, with
/// `userdata` and the answer as a `CHATHUB_KIND_CUSTOM` event (ns, sid, the
/// event name sent, `chathub_event_args_json` and the attachments of the
/// client's answer) valid until `on_answer` returns. Blocks the calling
/// thread (not the hub) meanwhile. Failures, without calling `on_answer`:
/// `CHATHUB_RESULT_TIMED_OUT`, `…_DELIVERY_FAILED` (the socket left
/// first), `…_SOCKET_NOT_FOUND` (no such socket on this hub),
/// `…_UNKNOWN_NAMESPACE`, `…_INVALID_EVENT_NAME`, `…_INVALID_JSON`,
/// `…_INVALID_ARGUMENT` (a timeout of 0), `…_CLOSED`. With recovery on,
/// an event sent with an ack carries no offset.
///
/// # Safety
/// `hub` is NULL or a live hub; the strings are NULL or NUL-terminated;
/// `attachments` is NULL or valid for `attachment_count` elements;
/// `on_answer` must not unwind.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn chathub_hub_emit_with_ack(
    hub: *const chathub_hub,
    ns: *const c_char,
    sid: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    attachments: *const chathub_bytes,
    attachment_count: usize,
    timeout_ms: u64,
    on_answer: chathub_event_callback,
    userdata: *mut c_void,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, ns, sid, event, args, bins) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::string(ns, "ns")?,
                cast::string(sid, "sid")?,
                cast::string(event, "event")?,
                cast::string(args_json, "args_json")?,
                cast::bytes_list(attachments, attachment_count, "attachments")?,
            )
        };
        let on_answer = on_answer.ok_or_else(|| Failure::null("on_answer"))?;
        if timeout_ms == 0 {
            return Err(Failure::invalid("timeout_ms must be above 0"));
        }
        let args = json::parse_args(args, &bins)?;
        let timeout = std::time::Duration::from_millis(timeout_ms);
        let answer = block_on(h.hub.emit_with_ack(ns, sid, event, args, timeout))?;
        let view = EventView::from_answer(ns, sid, event, &answer);
        // SAFETY: `on_answer` is C's function, called with the userdata it
        // gave and an answer that lives until it returns (documented).
        unsafe { on_answer(userdata, cast::lend(&view)) };
        Ok(())
    })
}

/// Puts socket `sid` of namespace `ns` in `room`. In a chat namespace it
/// moves there, out of its current room (as its own `join` would, without
/// the `joined room success!` line); in a host namespace it joins one more
/// room. Blocks until that took effect, in order with the socket's own
/// events. `CHATHUB_RESULT_SOCKET_NOT_FOUND`, `…_INVALID_ROOM`,
/// `…_UNKNOWN_NAMESPACE`, `…_CLOSED`.
///
/// # Safety
/// `hub` is NULL or a live hub; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_join(
    hub: *const chathub_hub,
    ns: *const c_char,
    sid: *const c_char,
    room: *const c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, ns, sid, room) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::string(ns, "ns")?,
                cast::string(sid, "sid")?,
                cast::string(room, "room")?,
            )
        };
        block_on(h.hub.join(ns, sid, room))?;
        Ok(())
    })
}

/// Takes socket `sid` out of `room`: in a chat namespace back to the lobby,
/// in a host namespace out of that one room (a socket that is not in
/// `room` stays where it is: `CHATHUB_RESULT_OK`). Blocks until done.
/// Failures as `chathub_hub_join`.
///
/// # Safety
/// `hub` is NULL or a live hub; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_leave(
    hub: *const chathub_hub,
    ns: *const c_char,
    sid: *const c_char,
    room: *const c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, ns, sid, room) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::string(ns, "ns")?,
                cast::string(sid, "sid")?,
                cast::string(room, "room")?,
            )
        };
        block_on(h.hub.leave(ns, sid, room))?;
        Ok(())
    })
}

/// Disconnects socket `sid` from namespace `ns` (its client sees
/// `io server disconnect`; the others get the disconnect notice). Blocks
/// until done. `CHATHUB_RESULT_SOCKET_NOT_FOUND`, `…_UNKNOWN_NAMESPACE`,
/// `…_CLOSED`.
///
/// # Safety
/// `hub` is NULL or a live hub; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_disconnect(
    hub: *const chathub_hub,
    ns: *const c_char,
    sid: *const c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, ns, sid) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::string(ns, "ns")?,
                cast::string(sid, "sid")?,
            )
        };
        block_on(h.hub.disconnect(ns, sid))?;
        Ok(())
    })
}

/// Lists who is where in namespace `ns`, as JSON written to `*out_json`:
/// `{"ns":"/chat","lobby":[{"sid":"…","name":"ann"}],"rooms":[{"name":"r1",
/// "members":[{"sid":"…","name":null}]}]}` (members by name then id, rooms
/// by name; `name` is null before login). Blocks until done.
///
/// Ownership: the caller owns the string and frees it with
/// `chathub_string_free`.
///
/// # Safety
/// `hub` is NULL or a live hub; `ns` is NULL or NUL-terminated; `out_json`
/// is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_rooms(
    hub: *const chathub_hub,
    ns: *const c_char,
    out_json: *mut *mut c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, ns, out) = unsafe {
            (
                cast::borrow(hub, "hub")?,
                cast::string(ns, "ns")?,
                cast::out(out_json, "out_json")?,
            )
        };
        let listing = block_on(h.hub.rooms(ns))?;
        let json = serde_json::to_string(&listing)
            .map_err(|e| Failure::new(chathub_result::Failed, e.to_string()))?;
        out.write(cast::owned_string(json)?);
        Ok(())
    })
}

/// Reads the TLS certificate and key again from the files of the config's
/// `tls_cert` and `tls_key` (a renewed certificate; the C example calls
/// this on `SIGHUP`). New handshakes get the new pair; open connections
/// keep theirs.
///
/// Failures: `CHATHUB_RESULT_TLS` (unreadable or unusable; the hub keeps
/// serving the pair it had), `CHATHUB_RESULT_INVALID_ARGUMENT` (the hub
/// was started without TLS).
///
/// # Safety
/// `hub` is NULL or a live hub.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_reload_tls(hub: *const chathub_hub) -> chathub_result {
    // SAFETY: the caller's contract above.
    unsafe { with_hub(hub, |h| Ok(h.hub.reload_tls()?)) }
}

/// Serves a new certificate chain and key, given as PEM text (copied), to
/// new handshakes from now on; later `chathub_hub_reload_tls` calls keep
/// this pair. Failures as `chathub_hub_reload_tls`.
///
/// # Safety
/// `hub` is NULL or a live hub; `cert_pem` and `key_pem` are NULL or valid
/// for reading `cert_len` and `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_set_tls_pem(
    hub: *const chathub_hub,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> chathub_result {
    let body = |h: &HubHandle| {
        // SAFETY: the caller's contract above.
        let (cert, key) = unsafe {
            (
                cast::byte_vec(cert_pem, cert_len, "cert_pem")?,
                cast::byte_vec(key_pem, key_len, "key_pem")?,
            )
        };
        Ok(h.hub
            .set_tls(chathub::Pem::Bytes(cert), chathub::Pem::Bytes(key))?)
    };
    // SAFETY: the caller's contract above.
    unsafe { with_hub(hub, body) }
}

/// The hub's counters as JSON written to `*out_json`: `{"sockets":3,
/// "packets_dropped":0,"events_dropped":0,"flood_disconnects":0,
/// "slow_consumer_disconnects":0,"connections_refused":0,
/// "cluster_messages_lost":0,"tasks":5,"recovered":0,"recovery_misses":0,
/// "recovery_packets":0,"recovery_bytes":0,"recovery_sessions":0,
/// "connections_polling":0,"connections_websocket":3,
/// "packets_received":12,"events_received":6,"packets_sent":20,
/// "broadcasts":4,"bytes_received":900,"bytes_sent":2100,
/// "payload_disconnects":0,"origin_refusals":0,"cluster_published":0,
/// "cluster_received":0,"cluster_down_ms":0}` (what each counts: the
/// README's operations section, and `chathub_hub_metrics_text`'s HELP
/// lines).
///
/// Ownership: the caller owns the string and frees it with
/// `chathub_string_free`.
///
/// # Safety
/// `hub` is NULL or a live hub; `out_json` is NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_stats(
    hub: *const chathub_hub,
    out_json: *mut *mut c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, out) = unsafe { (cast::borrow(hub, "hub")?, cast::out(out_json, "out_json")?) };
        let json = serde_json::to_string(&h.hub.stats())
            .map_err(|e| Failure::new(chathub_result::Failed, e.to_string()))?;
        out.write(cast::owned_string(json)?);
        Ok(())
    })
}

/// The hub's figures as Prometheus text (exposition format 0.0.4) written
/// to `*out_text`: what `GET` on the `metrics_path` config key answers, for
/// a host that serves it on a route of its own.
///
/// Ownership: the caller owns the string and frees it with
/// `chathub_string_free`.
///
/// # Safety
/// `hub` is NULL or a live hub; `out_text` is NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_metrics_text(
    hub: *const chathub_hub,
    out_text: *mut *mut c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, out) = unsafe { (cast::borrow(hub, "hub")?, cast::out(out_text, "out_text")?) };
        out.write(cast::owned_string(h.hub.metrics_text())?);
        Ok(())
    })
}

/// Writes the folder the Socket.IO client bundle (`/socket.io/socket.io.js`)
/// is served from to `*out_path`. Fails with `CHATHUB_RESULT_FAILED` when
/// none was found at start (the bundle then answers 404): set it with
/// `chathub_config_set_client_dist` or the `CHATHUB_CLIENT_DIST`
/// environment variable.
///
/// Ownership: the caller owns the string and frees it with
/// `chathub_string_free`.
///
/// # Safety
/// `hub` is NULL or a live hub; `out_path` is NULL or valid for writing one
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_hub_client_bundle(
    hub: *const chathub_hub,
    out_path: *mut *mut c_char,
) -> chathub_result {
    guard::result(|| {
        // SAFETY: the caller's contract above, for each pointer.
        let (h, out) = unsafe { (cast::borrow(hub, "hub")?, cast::out(out_path, "out_path")?) };
        let dir = h.hub.client_bundle().ok_or_else(|| {
            Failure::new(
                chathub_result::Failed,
                "no Socket.IO client bundle was found at start (set client_dist or CHATHUB_CLIENT_DIST)",
            )
        })?;
        out.write(cast::owned_string(dir.to_string_lossy().into_owned())?);
        Ok(())
    })
}

/// Frees a string libchathub handed over (`chathub_hub_rooms`,
/// `chathub_hub_stats`, `chathub_hub_metrics_text`,
/// `chathub_hub_client_bundle`, `chathub_config_keys`).
/// NULL is fine.
///
/// # Safety
/// `s` is NULL or a string from libchathub not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chathub_string_free(s: *mut c_char) {
    guard::value(|| {
        // SAFETY: the caller's contract above.
        unsafe { cast::free_string(s) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn block_on_waits_for_another_thread() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let t = thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(block_on(rx).unwrap(), 7);
        t.join().unwrap();
    }

    #[test]
    fn the_gate_refuses_after_close() {
        let gate = CallGate::default();
        let pass = gate.enter().unwrap();
        drop(pass);
        gate.close_and_wait();
        assert!(gate.enter().is_none());
    }

    #[test]
    fn null_hub_everywhere() {
        let mut port = 0u16;
        // SAFETY: NULL hubs and valid out pointers.
        unsafe {
            assert_eq!(
                chathub_hub_port(ptr::null(), &mut port),
                chathub_result::NullParameter
            );
            assert_eq!(chathub_hub_stop(ptr::null()), chathub_result::NullParameter);
            chathub_hub_free(ptr::null_mut());
            chathub_string_free(ptr::null_mut());
        }
    }
}
