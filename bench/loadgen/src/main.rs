//! `chathub-loadgen`: drives a Socket.IO chat server (chathub, or any
//! server of the chapter's protocol such as the Node socket.io reference)
//! with many WebSocket clients, speaking Engine.IO v4 / Socket.IO v5
//! itself, and prints one JSON line of results.
//!
//! ```text
//! chathub-loadgen connect --url http://127.0.0.1:3000 [--ns /chat] [--duration 5] [--concurrency 50]
//! chathub-loadgen fanout  --url U --clients 1000 --senders 10 [--window 20] [--duration 10]
//! chathub-loadgen rate    --url U --clients 1000 --rate 50 [--duration 10]
//! chathub-loadgen idle    --url U --clients 10000 [--room-size 10]     (holds until stdin closes)
//! chathub-loadgen churn   --url U --clients 1000 --cycles 5 [--wait]   (--wait: a line on stdin between cycles)
//! chathub-loadgen chat    --url U --clients 1000 [--period-ms 200]     (until the server disconnects them)
//! ```
//!
//! Every loop is bounded in count and time; it connects only where `--url`
//! says (the benchmarks and tests give 127.0.0.1).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
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
    concurrency: usize,
    rate: f64,
    room_size: usize,
    cycles: usize,
    wait: bool,
    period: Duration,
    login: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it
        .next()
        .ok_or("usage: chathub-loadgen <connect|fanout|rate|idle|churn|chat> --url URL ...")?;
    let mut a = Args {
        cmd,
        url: String::new(),
        ns: "/chat".into(),
        clients: 100,
        senders: 10,
        window: 20,
        duration: Duration::from_secs(5),
        concurrency: 50,
        rate: 50.0,
        room_size: 10,
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
            "--concurrency" => a.concurrency = num(value()?)? as usize,
            "--rate" => a.rate = num(value()?)?,
            "--room-size" => a.room_size = num(value()?)? as usize,
            "--cycles" => a.cycles = num(value()?)? as usize,
            "--period-ms" => a.period = Duration::from_millis(num(value()?)? as u64),
            "--wait" => a.wait = true,
            "--no-login" => a.login = false,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !a.url.starts_with("http://") {
        return Err("--url must be http://HOST:PORT".into());
    }
    if a.duration > Duration::from_secs(600) {
        return Err("--duration is at most 600 s".into());
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
}

impl Conn {
    /// Connects, joins the namespace, and waits for the `login` prompt.
    async fn open(url: &str, ns: &str) -> Result<Conn, String> {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replacen("http://", "ws://", 1)
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        if let Ok(s) = match ws.get_ref() {
            MaybeTlsStream::Plain(s) => Ok(s),
            _ => Err(()),
        } {
            let _ = s.set_nodelay(true);
        }
        let mut c = Conn {
            ws,
            prefix: prefix(ns),
        };
        let open = c.text().await?;
        if !open.starts_with('0') {
            return Err(format!("expected the engine.io open packet, got {open:?}"));
        }
        c.send(format!("40{}", c.prefix)).await?;
        let connect = c.text().await?;
        if !connect.starts_with(&format!("40{}", c.prefix)) {
            return Err(format!("connect refused: {connect}"));
        }
        let login = c.text().await?;
        if !login.contains("\"login\"") {
            return Err(format!("expected the login prompt, got {login}"));
        }
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

/// The text of a `serverMessage` packet, or `None`.
fn server_message<'a>(packet: &'a str, prefix: &str) -> Option<std::borrow::Cow<'a, str>> {
    let body = packet.strip_prefix("42")?.strip_prefix(prefix)?;
    let rest = body
        .strip_prefix("[\"serverMessage\",\"")?
        .strip_suffix("\"]")?;
    if rest.contains('\\') {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        return v
            .get(1)?
            .as_str()
            .map(|s| std::borrow::Cow::Owned(s.to_owned()));
    }
    Some(std::borrow::Cow::Borrowed(rest))
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
        let (url, ns, login) = (args.url.clone(), args.ns.clone(), args.login);
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

/// Latency samples in microseconds, and percentiles of them.
#[derive(Default)]
struct Samples(Vec<u32>);

impl Samples {
    fn percentile(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() - 1) as f64 * p).round() as usize;
        f64::from(self.0[i]) / 1000.0
    }
}

fn micros_since(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// `connect`: how many clients per second connect and get the login prompt.
async fn connect_rate(args: &Args) -> Result<serde_json::Value, String> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + args.duration;
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (url, ns) = (args.url.clone(), args.ns.clone());
        let (done, failed) = (done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match Conn::open(&url, &ns).await {
                    Ok(c) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        c.close().await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    for w in workers {
        let _ = w.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    Ok(serde_json::json!({
        "scenario": "connect",
        "connects": n,
        "failed": failed.load(Ordering::Relaxed),
        "seconds": secs,
        "connects_per_sec": n as f64 / secs,
    }))
}

/// The message text a sender sends: `s{sender} {seq} {micros}`.
fn stamp(sender: usize, seq: u64, start: Instant) -> String {
    format!("s{sender} {seq} {}", micros_since(start))
}

/// Parses a delivered `NAME said: s{sender} {seq} {micros}` line.
fn parse_delivery(line: &str) -> Option<(usize, u64)> {
    let said = line.find("said: s")?;
    let mut parts = line[said + 7..].split(' ');
    let sender = parts.next()?.parse().ok()?;
    let _seq: u64 = parts.next()?.parse().ok()?;
    let micros = parts.next()?.parse().ok()?;
    Some((sender, micros))
}

/// `fanout` and `rate`: clients in one room; senders send stamped lines;
/// every receiver records the latency of what it gets.
async fn fanout(args: &Args, fixed_rate: Option<f64>) -> Result<serde_json::Value, String> {
    let room = "bench".to_owned();
    let senders_n = if fixed_rate.is_some() {
        1
    } else {
        args.senders.max(1)
    };
    let conns = open_many(args, args.clients.max(senders_n + 1), |_| {
        Some(room.clone())
    })
    .await?;
    let start = Instant::now();
    let deliveries = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each sender may have `window` lines not yet seen by the tracker (the
    // last client), so queues stay bounded.
    let windows: Vec<Arc<Semaphore>> = (0..senders_n)
        .map(|_| Arc::new(Semaphore::new(args.window.max(1))))
        .collect();
    let (sample_tx, mut sample_rx) = mpsc::unbounded_channel::<Vec<u32>>();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    let total = conns.len();
    for (i, mut c) in conns.into_iter().enumerate() {
        let is_sender = i < senders_n;
        let is_tracker = i == total - 1;
        let deliveries = deliveries.clone();
        let stopping = stopping.clone();
        let windows = windows.clone();
        let sample_tx = sample_tx.clone();
        if is_sender {
            let window = windows[i].clone();
            let stop = stop.clone();
            let stopping = stopping.clone();
            senders.push(tokio::spawn(async move {
                let mut seq = 0u64;
                let interval = fixed_rate.map(|r| Duration::from_secs_f64(1.0 / r));
                let mut tick = interval.map(tokio::time::interval);
                loop {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    } else {
                        // A line the tracker never sees (dropped) must not
                        // stall the sender: a permit waits at most a second.
                        let permit = tokio::select! {
                            p = tokio::time::timeout(Duration::from_secs(1), window.clone().acquire_owned()) => p,
                            () = stop.notified() => break,
                        };
                        if let Ok(Ok(p)) = permit {
                            p.forget();
                        }
                    }
                    seq += 1;
                    if c.emit("clientMessage", &stamp(i, seq, start)).await.is_err() {
                        break;
                    }
                    // Read whatever arrived (our echoes, others' lines) without waiting.
                    while let Some(Some(Ok(Message::Text(t)))) = futures_util::FutureExt::now_or_never(c.ws.next()) {
                        if t.as_str() == "2" {
                            let _ = c.send("3".into()).await;
                        }
                    }
                }
                seq
            }));
            continue;
        }
        receivers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let prefix = c.prefix.clone();
            loop {
                let next = tokio::time::timeout(Duration::from_millis(200), c.ws.next()).await;
                let msg = match next {
                    Ok(Some(Ok(m))) => m,
                    Ok(_) => break,
                    Err(_) if stopping.load(Ordering::Relaxed) => break,
                    Err(_) => continue,
                };
                let Message::Text(t) = msg else { continue };
                if t.as_str() == "2" {
                    let _ = c.send("3".into()).await;
                    continue;
                }
                let Some(line) = server_message(&t, &prefix) else {
                    continue;
                };
                if let Some((sender, micros)) = parse_delivery(&line) {
                    let now = micros_since(start);
                    deliveries.fetch_add(1, Ordering::Relaxed);
                    samples.push(now.saturating_sub(micros).min(u64::from(u32::MAX)) as u32);
                    if is_tracker && sender < windows.len() {
                        windows[sender].add_permits(1);
                    }
                }
            }
            let _ = sample_tx.send(samples);
            c.close().await;
        }));
    }
    drop(sample_tx);
    // Warm up briefly, then measure over the duration.
    tokio::time::sleep(args.duration / 10).await;
    let d0 = deliveries.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(args.duration).await;
    let d1 = deliveries.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    stopping.store(true, Ordering::Relaxed);
    stop.notify_waiters();
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap_or(0);
    }
    for r in receivers {
        let _ = r.await;
    }
    let mut all = Samples::default();
    while let Some(s) = sample_rx.recv().await {
        all.0.extend(s);
    }
    Ok(serde_json::json!({
        "scenario": if fixed_rate.is_some() { "rate" } else { "fanout" },
        "clients": total,
        "senders": senders_n,
        "sent": sent,
        "deliveries_per_sec": (d1 - d0) as f64 / secs,
        "p50_ms": all.percentile(0.5),
        "p99_ms": all.percentile(0.99),
        "samples": all.0.len(),
    }))
}

/// Reads one line from stdin (a test or harness says "go on"); EOF too.
async fn wait_stdin(lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>) {
    let _ = lines.next_line().await;
}

/// `idle`: clients logged in, in rooms of `room_size`, held until stdin
/// closes (or the duration, when given without a terminal).
async fn idle(args: &Args) -> Result<serde_json::Value, String> {
    let size = args.room_size.max(1);
    let conns = open_many(args, args.clients, |i| Some(format!("room{}", i / size))).await?;
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
                tokio::select! {
                    _ = tick.tick() => {
                        if c.emit("clientMessage", &format!("c{i}")).await.is_err() {
                            break "send failed";
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    m = c.ws.next() => match m {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => { let _ = c.send("3".into()).await; }
                        Some(Ok(Message::Text(t))) if t.starts_with(&disconnect) => break "disconnect packet",
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "connection closed",
                        Some(Ok(_)) => {}
                    },
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

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chathub-loadgen: {e}");
            std::process::exit(2);
        }
    };
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = rt.block_on(async {
        match args.cmd.as_str() {
            "connect" => connect_rate(&args).await,
            "fanout" => fanout(&args, None).await,
            "rate" => fanout(&args, Some(args.rate)).await,
            "idle" => idle(&args).await,
            "churn" => churn(&args).await,
            "chat" => chat(&args).await,
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
