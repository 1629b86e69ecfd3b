//! `chathub-loadgen`: drives a Socket.IO chat server (chathub, or any
//! server of the chapter's protocol such as the Node socket.io reference)
//! with many WebSocket clients, speaking Engine.IO v4 / Socket.IO v5
//! itself, and prints one JSON line of results.
//!
//! ```text
//! chathub-loadgen connect --url http://127.0.0.1:3000 [--ns /chat] [--duration 5] [--concurrency 50]
//! chathub-loadgen fanout  --url U --clients 1000 --senders 10 [--window 20] [--duration 10] [--warmup 1]
//! chathub-loadgen rate    --url U --clients 1000 --rate 50 [--duration 10] [--warmup 1]
//! chathub-loadgen cluster --url U1,U2,U3 --clients 300 --senders 3 --rate 300 [--rooms 1] [--duration 10] [--warmup 1]
//! chathub-loadgen idle    --url U --clients 10000 [--room-size 10]     (holds until stdin closes; room size 0: the lobby)
//! chathub-loadgen churn   --url U --clients 1000 --cycles 5 [--wait]   (--wait: a line on stdin between cycles)
//! chathub-loadgen chat    --url U --clients 1000 [--period-ms 200]     (until the server disconnects them)
//! chathub-loadgen storm   --url U --clients 1000 [--rate 50] [--duration 5] [--warmup 1]
//! chathub-loadgen acks    --url U --clients 50 --window 4 [--duration 10] [--warmup 1]
//! ```
//!
//! `cluster` is `rate` across hubs: `--url` lists the hubs (comma-separated;
//! client `i` goes to hub `i % hubs`), `--senders` clients (the first ones,
//! so spread over the hubs) send `--rate` lines per second between them,
//! and the result adds the p50/p99 of deliveries that crossed from one hub
//! to another (`cross_p50_ms`, `cross_p99_ms`), the lines sent within the
//! measured window (`sent_measured`), and exactness: per receiver and
//! sender, lines that never came (`gaps`) and lines that came twice or out
//! of order (`out_of_order`). With `--rooms R` (R > 1) client `i` is in
//! room `i % R` instead of one room for all; choose R with no factor in
//! common with the number of hubs, so that every room has members on every
//! hub, and `--senders` at least R, so that every room has a sender.
//!
//! `storm` needs connection state recovery on the server: every client
//! drops its connection at once (no close frame) during a broadcast, comes
//! back after socket.io-client's reconnection delay (0.5–1.5 s) with its
//! `pid` and last offset, and counts what it got: recovered sockets, lines
//! missing or twice, and the time from the drop until it has every line
//! sent before it.
//!
//! Every scenario takes `--threads N` (its runtime's worker threads; 1: a
//! single-threaded runtime; default: the CPUs it may run on, so `taskset`
//! decides).
//!
//! `acks` needs a server that answers the ack of an `echo` event with the
//! event's arguments (`socket.on('echo', (...args) => args.pop()(...args))`):
//! every client (not logged in) keeps `--window` such emits in flight,
//! `42NS,ID["echo","hello",ID]`, and expects `43NS,ID["hello",ID]`; it
//! reports completed round trips per second and their p50/p99, and counts
//! wrong answers and acks still unanswered after a second.
//!
//! `connect`, `fanout`, `rate` and `acks` print progress lines before the result:
//! `{"scenario":…,"ready":N}` once the clients are connected, and
//! `{"scenario":…,"measuring":true}` / `…false` exactly when the measured
//! window opens and closes, so that a harness can sample the server's CPU
//! over the same window. Every result has `cpu_percent`: this process's own
//! CPU time over the window, in percent of one core (near 100 × threads,
//! the generator itself is the limit).
//!
//! Every loop is bounded in count and time; it connects only where `--url`
//! says (the benchmarks and tests give 127.0.0.1).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest any single wait of a client may take.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Args {
    cmd: String,
    url: String,
    ns: String,
    clients: usize,
    senders: usize,
    window: usize,
    duration: Duration,
    warmup: Option<Duration>,
    threads: Option<usize>,
    concurrency: usize,
    rate: f64,
    room_size: usize,
    rooms: usize,
    cycles: usize,
    wait: bool,
    period: Duration,
    login: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or(
        "usage: chathub-loadgen <connect|fanout|rate|cluster|idle|churn|chat|storm|acks> --url URL ...",
    )?;
    let mut a = Args {
        cmd,
        url: String::new(),
        ns: "/chat".into(),
        clients: 100,
        senders: 10,
        window: 20,
        duration: Duration::from_secs(5),
        warmup: None,
        threads: None,
        concurrency: 50,
        rate: 50.0,
        room_size: 10,
        rooms: 1,
        cycles: 3,
        wait: false,
        period: Duration::from_millis(200),
        login: true,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--ns" => a.ns = value()?,
            "--clients" => a.clients = num(value()?)? as usize,
            "--senders" => a.senders = num(value()?)? as usize,
            "--window" => a.window = num(value()?)? as usize,
            "--duration" => a.duration = Duration::from_secs_f64(num(value()?)?),
            "--warmup" => a.warmup = Some(Duration::from_secs_f64(num(value()?)?)),
            "--threads" => a.threads = Some((num(value()?)? as usize).max(1)),
            "--concurrency" => a.concurrency = num(value()?)? as usize,
            "--rate" => a.rate = num(value()?)?,
            "--room-size" => a.room_size = num(value()?)? as usize,
            "--rooms" => a.rooms = (num(value()?)? as usize).max(1),
            "--cycles" => a.cycles = num(value()?)? as usize,
            "--period-ms" => a.period = Duration::from_millis(num(value()?)? as u64),
            "--wait" => a.wait = true,
            "--no-login" => a.login = false,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() || !a.url.split(',').all(|u| u.starts_with("http://")) {
        return Err("--url must be http://HOST:PORT (cluster: several, comma-separated)".into());
    }
    if a.cmd != "cluster" && a.url.contains(',') {
        return Err("only cluster takes several URLs".into());
    }
    if a.duration > Duration::from_secs(600) || a.warmup > Some(Duration::from_secs(60)) {
        return Err("--duration is at most 600 s, --warmup at most 60 s".into());
    }
    Ok(a)
}

/// Raises the open-file limit to its hard maximum (many sockets).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The namespace part of packets: empty for `/`, `NS,` otherwise.
fn prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}

/// One Socket.IO client over a WebSocket.
struct Conn {
    ws: Ws,
    prefix: String,
    /// The socket id of the CONNECT answer.
    sid: String,
    /// The private session id, when the server has recovery on.
    pid: Option<String>,
    /// Packets that came before the CONNECT answer (socket.io sends what a
    /// recovered socket missed first).
    early: Vec<String>,
}

impl Conn {
    /// Connects, joins the namespace, and waits for the `login` prompt.
    async fn open(url: &str, ns: &str) -> Result<Conn, String> {
        let mut c = Conn::connect(url, ns, None).await?;
        let login = c.text().await?;
        if !login.contains("\"login\"") {
            return Err(format!("expected the login prompt, got {login}"));
        }
        Ok(c)
    }

    /// Connects and joins the namespace with `auth` (JSON); reads the
    /// CONNECT answer only.
    async fn connect(url: &str, ns: &str, auth: Option<&str>) -> Result<Conn, String> {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replacen("http://", "ws://", 1)
        );
        // A client reads small frames. tungstenite zeroes up to a whole
        // read buffer before every read: 4 KiB (not 128 KiB) keeps that
        // cheap and 10,000 clients light. TCP_NODELAY on.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
        let mut c = Conn {
            ws,
            prefix: prefix(ns),
            sid: String::new(),
            pid: None,
            early: Vec::new(),
        };
        let open = c.text().await?;
        if !open.starts_with('0') {
            return Err(format!("expected the engine.io open packet, got {open:?}"));
        }
        c.send(format!("40{}{}", c.prefix, auth.unwrap_or("")))
            .await?;
        let ok = format!("40{}", c.prefix);
        let connect = loop {
            let t = c.text().await?;
            if t.starts_with(&ok) || t.starts_with("44") || c.early.len() > 100_000 {
                break t;
            }
            c.early.push(t);
        };
        let Some(answer) = connect.strip_prefix(&ok) else {
            return Err(format!("connect refused: {connect}"));
        };
        let answer: serde_json::Value =
            serde_json::from_str(answer).map_err(|e| format!("connect answer {connect}: {e}"))?;
        c.sid = answer["sid"].as_str().unwrap_or_default().to_owned();
        c.pid = answer["pid"].as_str().map(str::to_owned);
        Ok(c)
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// Emits an event with one string argument.
    async fn emit(&mut self, event: &str, arg: &str) -> Result<(), String> {
        let packet = format!(
            "42{}[{},{}]",
            self.prefix,
            serde_json::Value::from(event),
            serde_json::Value::from(arg)
        );
        self.send(packet).await
    }

    /// The next text frame (answering pings); `Err` when closed.
    async fn text(&mut self) -> Result<String, String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .map_err(|_| "no message in time".to_string())?
                .ok_or("closed")?
                .map_err(|e| format!("read: {e}"))?;
            match msg {
                Message::Text(t) if t.as_str() == "2" => self.send("3".into()).await?,
                Message::Text(t) => return Ok(t.to_string()),
                Message::Close(_) => return Err("closed".into()),
                _ => {}
            }
        }
    }

    /// Reads until a `serverMessage` equal to `line`.
    async fn expect_line(&mut self, line: &str) -> Result<(), String> {
        loop {
            let t = self.text().await?;
            if server_message(&t, &self.prefix).is_some_and(|m| m == line) {
                return Ok(());
            }
        }
    }

    async fn login(&mut self, name: &str) -> Result<(), String> {
        self.emit("login", name).await?;
        self.expect_line(&format!("Currently logged in as {name}"))
            .await
    }

    async fn join(&mut self, room: &str) -> Result<(), String> {
        self.emit("join", room).await?;
        self.expect_line("joined room success!").await
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The text of a `serverMessage` packet, or `None` (an offset after it,
/// from a server with recovery on, is passed over).
fn server_message<'a>(packet: &'a str, prefix: &str) -> Option<std::borrow::Cow<'a, str>> {
    let body = packet.strip_prefix("42")?.strip_prefix(prefix)?;
    let rest = body.strip_prefix("[\"serverMessage\",\"")?;
    // Without a backslash before it, the first quote ends the text.
    let end = rest.find('"')?;
    let text = &rest[..end];
    if text.contains('\\') {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        return v
            .get(1)?
            .as_str()
            .map(|s| std::borrow::Cow::Owned(s.to_owned()));
    }
    let after = &rest[end..];
    (after == "\"]" || after.starts_with("\",\"")).then_some(std::borrow::Cow::Borrowed(text))
}

/// The offset a server with recovery on puts last in an event: the last
/// string argument of an EVENT packet (what socket.io-client keeps).
fn offset_of(packet: &str) -> Option<&str> {
    if !packet.starts_with("42") {
        return None;
    }
    let body = packet.strip_suffix("\"]")?;
    let start = body.rfind('"')?;
    Some(&body[start + 1..])
}

/// Opens `n` clients, at most `concurrency` connecting at once, each
/// logged in (if asked) and in the room `room_of(i)`.
async fn open_many(
    args: &Args,
    n: usize,
    room_of: impl Fn(usize) -> Option<String>,
) -> Result<Vec<Conn>, String> {
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let gate = gate.clone();
        let urls: Vec<&str> = args.url.split(',').collect();
        let url = urls[i % urls.len()].to_owned();
        let (ns, login) = (args.ns.clone(), args.login);
        let room = room_of(i);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut c = Conn::open(&url, &ns).await?;
            if login {
                c.login(&format!("u{i}")).await?;
            }
            if let Some(room) = room {
                c.join(&room).await?;
            }
            Ok::<_, String>(c)
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for t in tasks {
        conns.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(conns)
}

/// Latencies in microseconds, in log-linear buckets (within 1/64 ≈ 1.6 %):
/// fixed memory and one increment per sample, however many arrive.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u32>,
    total: u64,
}

/// Exact buckets below this; above it, 64 buckets per power of two.
const EXACT: u64 = 128;
/// Enough buckets for any `u32` number of microseconds.
const BUCKETS: usize = EXACT as usize + (32 - 7) * 64;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    fn bucket(micros: u64) -> usize {
        let v = micros.min(u64::from(u32::MAX));
        if v < EXACT {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros() as usize; // 7..=31
        let mantissa = (v >> (exp - 6)) as usize & 63;
        EXACT as usize + (exp - 7) * 64 + mantissa
    }

    /// The middle of a bucket, in microseconds.
    fn value(bucket: usize) -> f64 {
        if bucket < EXACT as usize {
            return bucket as f64;
        }
        let exp = (bucket - EXACT as usize) / 64 + 7;
        let mantissa = ((bucket - EXACT as usize) % 64) as u64;
        let low = (64 + mantissa) << (exp - 6);
        let width = 1u64 << (exp - 6);
        low as f64 + width as f64 / 2.0
    }

    fn record(&mut self, micros: u64) {
        self.counts[Self::bucket(micros)] += 1;
        self.total += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The `p` quantile (0..=1) in milliseconds; NaN without samples.
    fn percentile(&self, p: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((self.total - 1) as f64 * p).round() as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen > rank {
                return Self::value(i) / 1000.0;
            }
        }
        f64::NAN
    }
}

fn micros_since(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// Prints a progress line (stdout is line-buffered: it leaves at once).
fn progress(line: serde_json::Value) {
    println!("{line}");
}

/// This process's CPU time so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass; zeroed is a valid rusage.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return f64::NAN;
        }
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The measured window: marks its start and end on stdout and measures
/// this process's CPU over it.
struct Window {
    scenario: &'static str,
    started: Instant,
    cpu: f64,
}

impl Window {
    fn open(scenario: &'static str) -> Window {
        progress(serde_json::json!({"scenario": scenario, "measuring": true}));
        Window {
            scenario,
            started: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// Closes it: (seconds, this process's CPU in percent of one core).
    fn close(self) -> (f64, f64) {
        let secs = self.started.elapsed().as_secs_f64();
        let cpu = (cpu_seconds() - self.cpu) / secs * 100.0;
        progress(serde_json::json!({"scenario": self.scenario, "measuring": false}));
        (secs, cpu)
    }
}

/// `connect`: how many clients per second connect and get the login prompt.
async fn connect_rate(args: &Args) -> Result<serde_json::Value, String> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut last_error = None;
    let (errors_tx, mut errors) = mpsc::unbounded_channel::<String>();
    let window = Window::open("connect");
    let deadline = Instant::now() + args.duration;
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (url, ns) = (args.url.clone(), args.ns.clone());
        let (done, failed) = (done.clone(), failed.clone());
        let errors_tx = errors_tx.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match Conn::open(&url, &ns).await {
                    Ok(c) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        c.close().await;
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let _ = errors_tx.send(e);
                        // A refused connect returns at once: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    drop(errors_tx);
    for w in workers {
        let _ = w.await;
    }
    let (secs, cpu) = window.close();
    while let Ok(e) = errors.try_recv() {
        last_error = Some(e);
    }
    let n = done.load(Ordering::Relaxed);
    Ok(serde_json::json!({
        "scenario": "connect",
        "connects": n,
        "failed": failed.load(Ordering::Relaxed),
        "last_error": last_error,
        "seconds": secs,
        "connects_per_sec": n as f64 / secs,
        "cpu_percent": cpu,
    }))
}

/// The message text a sender sends: `s{sender} {seq} {micros}`.
fn stamp(sender: usize, seq: u64, start: Instant) -> String {
    format!("s{sender} {seq} {}", micros_since(start))
}

/// Parses a delivered `NAME said: s{sender} {seq} {micros}` line (not the
/// sender's own `You said: …`): (sender, seq, micros). Read from the end,
/// as the line is made.
fn parse_delivery(line: &str) -> Option<(usize, u64, u64)> {
    let mut parts = line.rsplitn(4, ' ');
    let micros = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sender = parts.next()?.strip_prefix('s')?.parse().ok()?;
    let head = parts.next()?;
    if head == "You said:" || !head.ends_with(" said:") {
        return None;
    }
    Some((sender, seq, micros))
}

/// Per-sender slots counting who has seen each line in flight.
const SLOTS: usize = 1024;

/// What the clients of `fanout` and `rate` share.
struct Room {
    start: Instant,
    members: usize,
    /// How many hubs the clients are spread over (client `i` on `i % hubs`).
    hubs: usize,
    /// Lines sent while measuring.
    sent_measured: AtomicU64,
    /// Deliveries are counted and timed only while this is set.
    measuring: AtomicBool,
    /// `fanout`: per sender, permits for lines not yet seen by every other
    /// member (the window).
    windows: Vec<Arc<Semaphore>>,
    /// Per sender, per `seq % SLOTS`: how many members have seen that line.
    seen: Vec<Vec<AtomicUsize>>,
}

impl Room {
    /// Counts one member's sight of a line; the last one frees its window slot.
    fn saw(&self, sender: usize, seq: u64) {
        let (Some(slots), Some(window)) = (self.seen.get(sender), self.windows.get(sender)) else {
            return;
        };
        let slot = &slots[seq as usize % SLOTS];
        if slot.fetch_add(1, Ordering::Relaxed) + 1 == self.members - 1 {
            window.add_permits(1);
        }
    }
}

/// How a client of `fanout`/`rate` sends, if it does.
enum Sending {
    No,
    /// Within the window: a new line once one of ours reached everyone
    /// (or after a second without, when lines were lost).
    Window,
    /// At a fixed rate.
    Every(tokio::time::Interval),
}

/// What one client saw and did.
struct Tally {
    latencies: Histogram,
    /// Deliveries whose sender is on another hub.
    cross: Histogram,
    sent: u64,
    window_timeouts: u64,
    /// Per sender, the last line seen.
    last: Vec<u64>,
    /// Lines skipped (never seen before a later one of the same sender).
    gaps: u64,
    /// Lines seen again or after a later one of the same sender.
    out_of_order: u64,
}

/// What a frame meant to a client of `fanout`/`rate`.
enum Frame {
    /// A ping to answer.
    Ping,
    /// The connection ended.
    End,
    /// Anything else (timed and counted if it was a delivery).
    Other,
}

/// Reads one frame: times and counts a delivery.
fn on_frame(
    m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    prefix: &str,
    me: usize,
    room: &Room,
    tally: &mut Tally,
) -> Frame {
    let t = match m {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Frame::End,
        Some(Ok(_)) => return Frame::Other,
    };
    if t.as_str() == "2" {
        return Frame::Ping;
    }
    if let Some((sender, seq, micros)) =
        server_message(&t, prefix).and_then(|line| parse_delivery(&line))
    {
        if room.measuring.load(Ordering::Relaxed) {
            let micros = micros_since(room.start).saturating_sub(micros);
            tally.latencies.record(micros);
            if sender % room.hubs != me % room.hubs {
                tally.cross.record(micros);
            }
        }
        if let Some(last) = tally.last.get_mut(sender) {
            if seq <= *last {
                tally.out_of_order += 1;
            } else {
                tally.gaps += seq - *last - 1;
                *last = seq;
            }
        }
        room.saw(sender, seq);
    }
    Frame::Other
}

/// One client of `fanout`/`rate`: reads everything that arrives (and, as a
/// sender, sends), until told to stop.
async fn room_client(
    mut c: Conn,
    me: usize,
    mut sending: Sending,
    room: Arc<Room>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally {
        latencies: Histogram::new(),
        cross: Histogram::new(),
        sent: 0,
        window_timeouts: 0,
        last: vec![0; room.windows.len()],
        gaps: 0,
        out_of_order: 0,
    };
    let window = room.windows.get(me).cloned();
    let mut permit_by = tokio::time::Instant::now() + Duration::from_secs(1);
    'client: loop {
        let may_send = async {
            match (&mut sending, &window) {
                (Sending::Window, Some(w)) => {
                    match tokio::time::timeout_at(permit_by, w.acquire()).await {
                        Ok(Ok(p)) => {
                            p.forget();
                            true
                        }
                        _ => false,
                    }
                }
                (Sending::Every(tick), _) => {
                    tick.tick().await;
                    true
                }
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            m = c.ws.next() => {
                // This frame, then whatever else is already read (up to a
                // batch) without another round through the select.
                let mut next = Some(m);
                let mut budget = 256;
                while let Some(m) = next.take() {
                    match on_frame(m, &c.prefix, me, &room, &mut tally) {
                        Frame::End => break 'client,
                        Frame::Ping => {
                            let _ = c.send("3".into()).await;
                        }
                        Frame::Other => {}
                    }
                    budget -= 1;
                    if budget > 0 {
                        next = futures_util::FutureExt::now_or_never(c.ws.next());
                    }
                }
            }
            got_permit = may_send => {
                if !got_permit {
                    tally.window_timeouts += 1;
                }
                tally.sent += 1;
                if room.measuring.load(Ordering::Relaxed) {
                    room.sent_measured.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(slots) = room.seen.get(me) {
                    slots[tally.sent as usize % SLOTS].store(0, Ordering::Relaxed);
                }
                if c.emit("clientMessage", &stamp(me, tally.sent, room.start)).await.is_err() {
                    break 'client;
                }
                permit_by = tokio::time::Instant::now() + Duration::from_secs(1);
            }
        }
    }
    c.close().await;
    tally
}

/// `fanout`, `rate` and `cluster`: clients in one room; senders send
/// stamped lines; every other client records each line's latency.
/// `fanout`: each sender keeps at most `window` lines in flight (not yet
/// seen by every other member). `rate`: one sender at `rate` lines per
/// second. `cluster`: `senders` senders at `rate` lines per second between
/// them, the clients spread over the hubs of `--url`.
async fn fanout(args: &Args, fixed_rate: Option<f64>) -> Result<serde_json::Value, String> {
    let cluster = args.cmd == "cluster";
    let scenario = match (fixed_rate.is_some(), cluster) {
        (_, true) => "cluster",
        (true, false) => "rate",
        (false, false) => "fanout",
    };
    let senders_n = if fixed_rate.is_some() && !cluster {
        1
    } else {
        args.senders.max(1)
    };
    let fixed_rate = fixed_rate.map(|r| r / senders_n as f64);
    let hubs = args.url.split(',').count();
    let rooms = if cluster { args.rooms } else { 1 };
    let conns = open_many(args, args.clients.max(senders_n + 1), |i| {
        Some(if rooms > 1 {
            format!("bench{}", i % rooms)
        } else {
            "bench".to_owned()
        })
    })
    .await?;
    let total = conns.len();
    progress(serde_json::json!({"scenario": scenario, "ready": total}));
    let window = args.window.clamp(1, SLOTS / 2);
    let room = Arc::new(Room {
        start: Instant::now(),
        members: total,
        hubs,
        sent_measured: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        windows: (0..senders_n)
            .map(|_| Arc::new(Semaphore::new(window)))
            .collect(),
        seen: (0..senders_n)
            .map(|_| (0..SLOTS).map(|_| AtomicUsize::new(0)).collect())
            .collect(),
    });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut clients = Vec::with_capacity(total);
    for (i, c) in conns.into_iter().enumerate() {
        let sending = match fixed_rate {
            _ if i >= senders_n => Sending::No,
            Some(rate) => {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                Sending::Every(tick)
            }
            None => Sending::Window,
        };
        clients.push(tokio::spawn(room_client(
            c,
            i,
            sending,
            room.clone(),
            stop_rx.clone(),
        )));
    }
    // Warm up, then measure over the duration.
    tokio::time::sleep(args.warmup.unwrap_or(args.duration / 10)).await;
    room.measuring.store(true, Ordering::Relaxed);
    let measured = Window::open(scenario);
    tokio::time::sleep(args.duration).await;
    room.measuring.store(false, Ordering::Relaxed);
    let (secs, cpu) = measured.close();
    stop.send_replace(true);
    let mut all = Histogram::new();
    let mut cross = Histogram::new();
    let (mut sent, mut timeouts, mut gaps, mut out_of_order) = (0, 0, 0, 0);
    for c in clients {
        if let Ok(t) = c.await {
            all.merge(&t.latencies);
            cross.merge(&t.cross);
            sent += t.sent;
            timeouts += t.window_timeouts;
            gaps += t.gaps;
            out_of_order += t.out_of_order;
        }
    }
    Ok(serde_json::json!({
        "scenario": scenario,
        "clients": total,
        "senders": senders_n,
        "window": if fixed_rate.is_some() { None } else { Some(window) },
        "sent": sent,
        "window_timeouts": timeouts,
        "seconds": secs,
        "deliveries": all.total,
        "deliveries_per_sec": all.total as f64 / secs,
        "p50_ms": all.percentile(0.5),
        "p99_ms": all.percentile(0.99),
        "hubs": hubs,
        "rooms": rooms,
        "sent_measured": room.sent_measured.load(Ordering::Relaxed),
        "cross_deliveries": cross.total,
        "cross_p50_ms": if cross.total > 0 { Some(cross.percentile(0.5)) } else { None },
        "cross_p99_ms": if cross.total > 0 { Some(cross.percentile(0.99)) } else { None },
        "gaps": gaps,
        "out_of_order": out_of_order,
        "cpu_percent": cpu,
    }))
}

/// Reads one line from stdin (a test or harness says "go on"); EOF too.
async fn wait_stdin(lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>) {
    let _ = lines.next_line().await;
}

/// `idle`: clients logged in, in rooms of `room_size` (0: all in the
/// lobby), held until stdin closes (or the duration, when given without a
/// terminal).
async fn idle(args: &Args) -> Result<serde_json::Value, String> {
    let size = args.room_size;
    let conns = open_many(args, args.clients, |i| {
        (size > 0).then(|| format!("room{}", i / size))
    })
    .await?;
    println!(
        "{}",
        serde_json::json!({"scenario": "idle", "ready": conns.len()})
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // Keep answering pings while waiting.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut keepers = Vec::new();
    for mut c in conns {
        let mut stop_rx = stop_rx.clone();
        keepers.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = c.ws.next() => match m {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => { let _ = c.send("3".into()).await; }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    () = async { let _ = stop_rx.wait_for(|s| *s).await; } => break,
                }
            }
            c.close().await;
        }));
    }
    tokio::select! {
        () = wait_stdin(&mut lines) => {}
        () = tokio::time::sleep(Duration::from_secs(600)) => {}
    }
    stop.send_replace(true);
    let n = keepers.len();
    for k in keepers {
        let _ = k.await;
    }
    Ok(serde_json::json!({"scenario": "idle", "closed": n}))
}

/// `churn`: cycles of opening clients (login, join) and closing them.
async fn churn(args: &Args) -> Result<serde_json::Value, String> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let size = args.room_size.max(1);
    let mut per_cycle = Vec::new();
    for cycle in 1..=args.cycles {
        let t0 = Instant::now();
        let conns = open_many(args, args.clients, |i| Some(format!("churn{}", i / size))).await?;
        let n = conns.len();
        let closing: Vec<_> = conns.into_iter().map(|c| tokio::spawn(c.close())).collect();
        for c in closing {
            let _ = c.await;
        }
        per_cycle.push(t0.elapsed().as_secs_f64());
        println!(
            "{}",
            serde_json::json!({"scenario": "churn", "cycle": cycle, "clients": n})
        );
        if args.wait && cycle < args.cycles {
            wait_stdin(&mut lines).await;
        }
    }
    Ok(
        serde_json::json!({"scenario": "churn", "cycles": args.cycles, "seconds_per_cycle": per_cycle}),
    )
}

/// `chat`: clients that chat until the server disconnects them; reports
/// how each ended (DISCONNECT packet, closed connection).
async fn chat(args: &Args) -> Result<serde_json::Value, String> {
    let conns = open_many(args, args.clients, |i| Some(format!("talk{}", i % 10))).await?;
    println!(
        "{}",
        serde_json::json!({"scenario": "chat", "ready": conns.len()})
    );
    let endings = Arc::new(std::sync::Mutex::new(HashMap::<&'static str, usize>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let deadline = Instant::now() + args.duration.max(Duration::from_secs(60));
    for (i, mut c) in conns.into_iter().enumerate() {
        let endings = endings.clone();
        let sent = sent.clone();
        let period = args.period;
        tasks.push(tokio::spawn(async move {
            let disconnect = format!("41{}", c.prefix);
            let mut tick = tokio::time::interval(period);
            let ending = loop {
                if Instant::now() > deadline {
                    break "still connected at the deadline";
                }
                // What the server sent is read before anything is written:
                // its DISCONNECT may be waiting behind the socket's end.
                tokio::select! {
                    biased;
                    m = c.ws.next() => match m {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => { let _ = c.send("3".into()).await; }
                        Some(Ok(Message::Text(t))) if t.starts_with(&disconnect) => break "disconnect packet",
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "connection closed",
                        Some(Ok(_)) => {}
                    },
                    _ = tick.tick() => {
                        if c.emit("clientMessage", &format!("c{i}")).await.is_err() {
                            // The server has closed (a reset fails the write,
                            // while what it sent before is still readable):
                            // read to the end, bounded.
                            break ending_after_failed_send(&mut c, &disconnect).await;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            };
            *endings.lock().unwrap_or_else(|e| e.into_inner()).entry(ending).or_default() += 1;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let endings = endings.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(
        serde_json::json!({"scenario": "chat", "sent": sent.load(Ordering::Relaxed), "endings": endings}),
    )
}

/// How a `chat` client ended whose write failed: by what is left to read
/// (the server's DISCONNECT, or the connection's end), within 5 s.
async fn ending_after_failed_send(c: &mut Conn, disconnect: &str) -> &'static str {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(until, c.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.starts_with(disconnect) => {
                break "disconnect packet";
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break "connection closed",
            Err(_) => break "send failed, connection still open",
        }
    }
}

/// Sender 0's lines as one client counts them: gaps and repeats.
#[derive(Debug)]
struct Seqs {
    /// The next line expected.
    next: u64,
    missing: u64,
    duplicates: u64,
}

impl Seqs {
    fn saw(&mut self, seq: u64) {
        if seq == self.next {
            self.next += 1;
        } else if seq < self.next {
            self.duplicates += 1;
        } else {
            self.missing += seq - self.next;
            self.next = seq + 1;
        }
    }
}

/// What one client of `storm` saw.
#[derive(Debug, Default)]
struct StormTally {
    recovered: bool,
    error: Option<String>,
    missing: u64,
    duplicates: u64,
    /// From the drop until every line sent before it had arrived.
    recover_micros: Option<u64>,
    /// From coming back (the reconnection delay over) until then.
    catchup_micros: Option<u64>,
}

/// What the clients of `storm` share.
struct Storm {
    url: String,
    ns: String,
    /// The last line sent so far.
    sent: AtomicU64,
    /// The last line of all, once the sender stopped (0 before).
    last: AtomicU64,
    /// When the sender stopped.
    stopped: std::sync::OnceLock<Instant>,
}

/// Reads one frame of a `storm` client: answers pings, keeps the offset,
/// counts sender 0's lines. False when the connection ended.
async fn storm_frame(
    c: &mut Conn,
    m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    offset: &mut Option<String>,
    seqs: &mut Seqs,
) -> bool {
    let t = match m {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
        Some(Ok(_)) => return true,
    };
    if t.as_str() == "2" {
        let _ = c.send("3".into()).await;
        return true;
    }
    storm_packet(c, &t, offset, seqs);
    true
}

/// Keeps a packet's offset and counts it if it is one of sender 0's lines.
fn storm_packet(c: &Conn, t: &str, offset: &mut Option<String>, seqs: &mut Seqs) {
    if c.pid.is_some()
        && let Some(o) = offset_of(t)
    {
        *offset = Some(o.to_owned());
    }
    if let Some((0, seq, _)) = server_message(t, &c.prefix).and_then(|l| parse_delivery(&l)) {
        seqs.saw(seq);
    }
}

/// One client of `storm`: reads until the drop, drops its connection,
/// comes back with its session after a reconnection delay, and reads until
/// it has the sender's last line (or gives up 10 s after the sender
/// stopped).
async fn storm_client(
    mut c: Conn,
    i: usize,
    storm: Arc<Storm>,
    mut dropped: tokio::sync::watch::Receiver<bool>,
) -> StormTally {
    let mut tally = StormTally::default();
    let mut seqs = Seqs {
        next: 1,
        missing: 0,
        duplicates: 0,
    };
    let mut offset = None;
    loop {
        tokio::select! {
            biased;
            () = async { let _ = dropped.wait_for(|d| *d).await; } => break,
            m = c.ws.next() => {
                if !storm_frame(&mut c, m, &mut offset, &mut seqs).await {
                    tally.error = Some("closed before the drop".into());
                    return tally;
                }
            }
        }
    }
    let at = Instant::now();
    let owed = storm.sent.load(Ordering::Acquire);
    let (sid, pid) = (c.sid.clone(), c.pid.clone());
    // The network goes: no close frame, no DISCONNECT.
    drop(c);
    // socket.io-client's first reconnection waits 1 s ± 50 %.
    let delay = 500 + (i as u64 * 7919) % 1000;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let auth = serde_json::json!({ "pid": pid, "offset": offset }).to_string();
    let back = Instant::now();
    let mut c = match Conn::connect(&storm.url, &storm.ns, Some(&auth)).await {
        Ok(c) => c,
        Err(e) => {
            tally.error = Some(e);
            return tally;
        }
    };
    tally.recovered = pid.is_some() && c.sid == sid;
    for t in std::mem::take(&mut c.early) {
        storm_packet(&c, &t, &mut offset, &mut seqs);
    }
    loop {
        if tally.recover_micros.is_none() && seqs.next > owed {
            tally.recover_micros = Some(micros_since(at));
            tally.catchup_micros = Some(micros_since(back));
        }
        let last = storm.last.load(Ordering::Acquire);
        if last > 0 && seqs.next > last {
            break;
        }
        if storm
            .stopped
            .get()
            .is_some_and(|t| t.elapsed() > Duration::from_secs(10))
        {
            seqs.missing += last.saturating_sub(seqs.next - 1);
            break;
        }
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(100), c.ws.next()).await
            && !storm_frame(&mut c, m, &mut offset, &mut seqs).await
        {
            tally.error = Some("closed after coming back".into());
            break;
        }
    }
    tally.missing += seqs.missing;
    tally.duplicates = seqs.duplicates;
    c.close().await;
    tally
}

/// `storm`: clients in one room while a sender sends `rate` lines/s; after
/// `warmup` every client drops its connection at once and comes back with
/// its session; the sender goes on for `duration`. Reports the recovered
/// fraction, lines missing or twice, and the time to recover.
async fn storm(args: &Args) -> Result<serde_json::Value, String> {
    let conns = open_many(args, args.clients, |_| Some("storm".into())).await?;
    let mut sender = Conn::open(&args.url, &args.ns).await?;
    sender.login("sender").await?;
    sender.join("storm").await?;
    let with_pid = conns.iter().filter(|c| c.pid.is_some()).count();
    progress(serde_json::json!({"scenario": "storm", "ready": conns.len(), "with_pid": with_pid}));
    let storm = Arc::new(Storm {
        url: args.url.clone(),
        ns: args.ns.clone(),
        sent: AtomicU64::new(0),
        last: AtomicU64::new(0),
        stopped: std::sync::OnceLock::new(),
    });
    let (drop_tx, drop_rx) = tokio::sync::watch::channel(false);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(storm_client(c, i, storm.clone(), drop_rx.clone())))
        .collect();
    let start = Instant::now();
    let sending = {
        let storm = storm.clone();
        let period = Duration::from_secs_f64(1.0 / args.rate.max(1.0));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut seq = 0;
            loop {
                tokio::select! {
                    biased;
                    () = async { let _ = stop_rx.wait_for(|s| *s).await; } => break,
                    m = sender.ws.next() => match m {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => { let _ = sender.send("3".into()).await; }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = tick.tick() => {
                        seq += 1;
                        if sender.emit("clientMessage", &stamp(0, seq, start)).await.is_err() {
                            break;
                        }
                        storm.sent.store(seq, Ordering::Release);
                    }
                }
            }
            storm.last.store(seq.max(1), Ordering::Release);
            let _ = storm.stopped.set(Instant::now());
            sender.close().await;
        })
    };
    tokio::time::sleep(args.warmup.unwrap_or(Duration::from_secs(1))).await;
    let window = Window::open("storm");
    drop_tx.send_replace(true);
    tokio::time::sleep(args.duration).await;
    stop_tx.send_replace(true);
    let _ = sending.await;
    let mut tallies = Vec::new();
    for c in clients {
        tallies.push(c.await.map_err(|e| e.to_string())?);
    }
    let (secs, cpu) = window.close();
    let n = tallies.len();
    let recovered = tallies.iter().filter(|t| t.recovered).count();
    let sorted = |f: fn(&StormTally) -> Option<u64>| {
        let mut v: Vec<u64> = tallies.iter().filter_map(f).collect();
        v.sort_unstable();
        v
    };
    let (times, catchup) = (sorted(|t| t.recover_micros), sorted(|t| t.catchup_micros));
    let pct = |v: &[u64], p: f64| -> Option<f64> {
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        v.get(i).map(|&us| us as f64 / 1000.0)
    };
    let errors: Vec<&String> = tallies.iter().filter_map(|t| t.error.as_ref()).collect();
    let lines = storm.last.load(Ordering::Acquire);
    Ok(serde_json::json!({
        "scenario": "storm",
        "clients": n,
        "with_pid": with_pid,
        "recovered": recovered,
        "recovered_pct": recovered as f64 / n.max(1) as f64 * 100.0,
        "lines": lines,
        "missing": tallies.iter().map(|t| t.missing).sum::<u64>(),
        "duplicates": tallies.iter().map(|t| t.duplicates).sum::<u64>(),
        "recover_p50_ms": pct(&times, 0.5),
        "recover_p99_ms": pct(&times, 0.99),
        "catchup_p50_ms": pct(&catchup, 0.5),
        "catchup_p99_ms": pct(&catchup, 0.99),
        "recover_max_ms": times.last().map(|&us| us as f64 / 1000.0),
        "errors": errors.len(),
        "last_error": errors.last(),
        "seconds": secs,
        "cpu_percent": cpu,
    }))
}

/// The arguments (after the event name) of `echo` number `id`: what its
/// ack must answer.
fn echo_args(id: u64) -> String {
    format!("[\"hello\",{id}]")
}

/// An ACK packet of the namespace: (ack id, its arguments as JSON text).
fn parse_ack<'a>(packet: &'a str, prefix: &str) -> Option<(u64, &'a str)> {
    let body = packet.strip_prefix("43")?.strip_prefix(prefix)?;
    let digits = body.find(|c: char| !c.is_ascii_digit())?;
    let id = body[..digits].parse().ok()?;
    Some((id, &body[digits..]))
}

/// Whether an ack's arguments are those of `echo` number `id` (as text;
/// as values when a server writes them otherwise).
fn echoed(id: u64, answer: &str) -> bool {
    answer == echo_args(id)
        || serde_json::from_str::<serde_json::Value>(answer)
            .is_ok_and(|v| v == serde_json::json!(["hello", id]))
}

/// What one client of `acks` saw.
struct AckTally {
    /// Round trips completed while measuring.
    latencies: Histogram,
    /// Answers that were not the arguments sent, or to no ack in flight.
    wrong: u64,
    /// Acks in flight for over a second when the client stopped.
    late: u64,
    error: Option<String>,
}

/// One client of `acks` and its emits in flight.
struct Echoer {
    c: Conn,
    /// (ack id, when sent), oldest first.
    in_flight: std::collections::VecDeque<(u64, Instant)>,
    next_id: u64,
    measuring: Arc<AtomicBool>,
    tally: AckTally,
}

impl Echoer {
    /// Queues `echo` with the next ack id (written at the next flush).
    async fn feed_echo(&mut self) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        let packet = format!("42{}{id}[\"echo\",{}", self.c.prefix, &echo_args(id)[1..]);
        self.in_flight.push_back((id, Instant::now()));
        self.feed(packet).await
    }

    async fn feed(&mut self, text: String) -> Result<(), String> {
        self.c
            .ws
            .feed(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.c.ws.flush().await.map_err(|e| format!("send: {e}"))
    }

    /// Handles one frame: answers a ping; for an ack, times it, checks it
    /// and queues the next `echo`. `Err` when the connection ended.
    async fn on_frame(
        &mut self,
        m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), String> {
        let t = match m {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                return Err("connection closed".into());
            }
            Some(Ok(_)) => return Ok(()),
        };
        if t.as_str() == "2" {
            return self.feed("3".into()).await;
        }
        let Some((id, answer)) = parse_ack(&t, &self.c.prefix) else {
            return Ok(());
        };
        let Some(at) = self.in_flight.iter().position(|&(i, _)| i == id) else {
            self.tally.wrong += 1;
            return Ok(());
        };
        if let Some((_, sent)) = self.in_flight.remove(at)
            && self.measuring.load(Ordering::Relaxed)
        {
            self.tally.latencies.record(micros_since(sent));
        }
        if !echoed(id, answer) {
            self.tally.wrong += 1;
        }
        self.feed_echo().await
    }

    /// Sends `window` emits, then one more for each answer, until told to
    /// stop (or the connection ends, or nothing arrives for a while).
    async fn run(
        &mut self,
        window: usize,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        for _ in 0..window {
            self.feed_echo().await?;
        }
        self.flush().await?;
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                m = tokio::time::timeout(WAIT, self.c.ws.next()) => {
                    let m = m.map_err(|_| format!("no answer in {WAIT:?} with {} acks in flight", self.in_flight.len()))?;
                    // This frame, then whatever else is already read (up to
                    // a batch); what it sends goes out in one flush.
                    self.on_frame(m).await?;
                    for _ in 0..255 {
                        match futures_util::FutureExt::now_or_never(self.c.ws.next()) {
                            Some(m) => self.on_frame(m).await?,
                            None => break,
                        }
                    }
                    self.flush().await?;
                }
            }
        }
    }
}

/// One client of `acks`: keeps `window` `echo` emits with an ack in flight,
/// sending the next as each answer arrives, until told to stop.
async fn ack_client(
    c: Conn,
    window: usize,
    measuring: Arc<AtomicBool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> AckTally {
    let mut e = Echoer {
        c,
        in_flight: std::collections::VecDeque::with_capacity(window + 1),
        next_id: 0,
        measuring,
        tally: AckTally {
            latencies: Histogram::new(),
            wrong: 0,
            late: 0,
            error: None,
        },
    };
    if let Err(error) = e.run(window, &mut stop).await {
        e.tally.error = Some(error);
    }
    e.tally.late = e
        .in_flight
        .iter()
        .filter(|(_, sent)| sent.elapsed() > Duration::from_secs(1))
        .count() as u64;
    e.c.close().await;
    e.tally
}

/// `acks`: clients (not logged in, in the lobby) each keeping `window`
/// `echo` emits with an ack in flight; the server answers each ack with
/// the event's arguments. Reports acks per second (round trips completed
/// in the measured window) and the round trip's p50/p99.
async fn acks(args: &Args) -> Result<serde_json::Value, String> {
    let quiet = Args {
        login: false,
        ..args.clone()
    };
    let conns = open_many(&quiet, args.clients.max(1), |_| None).await?;
    let total = conns.len();
    progress(serde_json::json!({"scenario": "acks", "ready": total}));
    let window = args.window.clamp(1, 512);
    let measuring = Arc::new(AtomicBool::new(false));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(ack_client(c, window, measuring.clone(), stop_rx.clone())))
        .collect();
    tokio::time::sleep(args.warmup.unwrap_or(Duration::from_secs(1))).await;
    measuring.store(true, Ordering::Relaxed);
    let measured = Window::open("acks");
    tokio::time::sleep(args.duration).await;
    measuring.store(false, Ordering::Relaxed);
    let (secs, cpu) = measured.close();
    stop.send_replace(true);
    let mut all = Histogram::new();
    let (mut wrong, mut late) = (0, 0);
    let mut errors = Vec::new();
    for c in clients {
        let t = c.await.map_err(|e| e.to_string())?;
        all.merge(&t.latencies);
        wrong += t.wrong;
        late += t.late;
        errors.extend(t.error);
    }
    Ok(serde_json::json!({
        "scenario": "acks",
        "clients": total,
        "window": window,
        "seconds": secs,
        "acks": all.total,
        "acks_per_sec": all.total as f64 / secs,
        "p50_ms": all.percentile(0.5),
        "p99_ms": all.percentile(0.99),
        "wrong": wrong,
        "late": late,
        "errors": errors.len(),
        "last_error": errors.last(),
        "cpu_percent": cpu,
    }))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chathub-loadgen: {e}");
            std::process::exit(2);
        }
    };
    raise_fd_limit();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("a runtime");
    let result = rt.block_on(async {
        match args.cmd.as_str() {
            "connect" => connect_rate(&args).await,
            "fanout" => fanout(&args, None).await,
            "rate" => fanout(&args, Some(args.rate)).await,
            "cluster" => fanout(&args, Some(args.rate)).await,
            "idle" => idle(&args).await,
            "churn" => churn(&args).await,
            "chat" => chat(&args).await,
            "storm" => storm(&args).await,
            "acks" => acks(&args).await,
            other => Err(format!("unknown scenario {other}")),
        }
    });
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("chathub-loadgen: {e}");
            std::process::exit(1);
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_read_from_the_end() {
        assert_eq!(parse_delivery("u7 said: s3 12 4567"), Some((3, 12, 4567)));
        // A name with spaces, or that looks like a stamp, does not matter.
        assert_eq!(
            parse_delivery("a said: s1 2 3 said: s4 5 6"),
            Some((4, 5, 6))
        );
        assert_eq!(parse_delivery("You said: s3 12 4567"), None);
        assert_eq!(parse_delivery("User u1 Logged in"), None);
        assert_eq!(parse_delivery("u1 said: hello there you"), None);
        assert_eq!(parse_delivery("u1 said: s3 12"), None);
    }

    #[test]
    fn server_messages_are_unwrapped() {
        let p = prefix("/chat");
        assert_eq!(
            server_message(r#"42/chat,["serverMessage","u1 said: hi"]"#, &p).as_deref(),
            Some("u1 said: hi")
        );
        assert_eq!(
            server_message(r#"42/chat,["serverMessage","a \"q\""]"#, &p).as_deref(),
            Some("a \"q\"")
        );
        assert_eq!(server_message(r#"42["serverMessage","x"]"#, &p), None);
        assert_eq!(
            server_message(r#"42["serverMessage","x"]"#, &prefix("/")).as_deref(),
            Some("x")
        );
        assert_eq!(server_message(r#"42/chat,["login"]"#, &p), None);
        // With recovery: the offset follows.
        assert_eq!(
            server_message(r#"42/chat,["serverMessage","u1 said: hi","ab-7"]"#, &p).as_deref(),
            Some("u1 said: hi")
        );
        assert_eq!(
            server_message(r#"42/chat,["serverMessage","a \"q\"","ab-7"]"#, &p).as_deref(),
            Some("a \"q\"")
        );
        assert_eq!(
            offset_of(r#"42/chat,["serverMessage","u1 said: hi","ab-7"]"#),
            Some("ab-7")
        );
        assert_eq!(offset_of(r#"42/chat,["login","ab-0"]"#), Some("ab-0"));
        assert_eq!(offset_of(r#"40/chat,{"sid":"x"}"#), None);
    }

    #[test]
    fn acks_are_read_and_checked() {
        let p = prefix("/chat");
        assert_eq!(
            parse_ack(r#"43/chat,12["hello",12]"#, &p),
            Some((12, r#"["hello",12]"#))
        );
        assert_eq!(parse_ack(r#"43[]"#, &prefix("/")), None);
        assert_eq!(parse_ack(r#"430[]"#, &prefix("/")), Some((0, "[]")));
        assert_eq!(parse_ack(r#"43/chat,["hello"]"#, &p), None);
        assert_eq!(parse_ack(r#"43/other,1["hello",1]"#, &p), None);
        assert_eq!(parse_ack(r#"42/chat,1["echo","hello",1]"#, &p), None);
        assert!(echoed(7, r#"["hello",7]"#));
        // The same values written otherwise.
        assert!(echoed(7, r#"[ "hello", 7 ]"#));
        assert!(!echoed(7, r#"["hello",8]"#));
        assert!(!echoed(7, r#"["hello"]"#));
        assert!(!echoed(7, r#"[]"#));
    }

    #[test]
    fn histogram_buckets_are_within_two_percent() {
        for v in [
            0u64,
            1,
            50,
            127,
            128,
            129,
            1000,
            4_567,
            99_999,
            3_000_000,
            4_000_000_000,
        ] {
            let b = Histogram::bucket(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            let mid = Histogram::value(b);
            let err = (mid - v as f64).abs() / (v as f64).max(1.0);
            assert!(err <= 0.02 || v < EXACT, "{v}: bucket {b} is {mid}");
            if v < EXACT {
                assert_eq!(mid, v as f64);
            }
        }
        // Buckets grow with the value.
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(997) {
            let b = Histogram::bucket(v);
            assert!(b >= last);
            last = b;
        }
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_come_from_the_counts() {
        let mut h = Histogram::new();
        assert!(h.percentile(0.5).is_nan());
        for v in 1..=100u64 {
            h.record(v * 1000); // 1..100 ms
        }
        let mut other = Histogram::new();
        other.record(1_000_000); // one second
        h.merge(&other);
        assert_eq!(h.total, 101);
        let p50 = h.percentile(0.5);
        assert!((p50 - 51.0).abs() / 51.0 < 0.02, "{p50}");
        let p99 = h.percentile(0.99);
        assert!((p99 - 100.0).abs() / 100.0 < 0.02, "{p99}");
        assert!((h.percentile(1.0) - 1000.0).abs() / 1000.0 < 0.02);
    }
}
