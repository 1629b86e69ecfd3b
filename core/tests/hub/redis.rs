//! A real `redis-server` for the cluster tests, on a port the OS picked.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Arguments after the common ones (TLS files, users).
    extra: Vec<std::ffi::OsString>,
    /// `port` is a TLS port (and the plain one is off).
    tls: bool,
}

/// Whether `redis-server` can be run here. The tests need it; without it
/// they fail (in CI) or say loudly that they were skipped (elsewhere).
pub fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is not installed (scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: redis-server is not installed; run scripts/setup.sh");
    }
    found
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(false, Vec::new())
    }

    /// A `redis-server` with `extra` arguments; `tls`: its port speaks
    /// TLS only (`extra` then names the certificate files).
    pub fn start_with(tls: bool, extra: Vec<std::ffi::OsString>) -> RedisServer {
        // A free port from the OS; if another process takes it before
        // Redis binds, try again with another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = RedisServer {
                port,
                child: None,
                extra: extra.clone(),
                tls,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts redis-server on `self.port`; true once it accepts connections.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let ports: &[&str] = if self.tls {
            &["--port", "0", "--tls-port", &port]
        } else {
            &["--port", &port]
        };
        let mut child = Command::new("redis-server")
            .args(ports)
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "notice",
            ])
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(true);
                }
            }
            let _ = tx.send(false);
        });
        let ready = rx.recv_timeout(Duration::from_secs(10)).unwrap_or(false);
        if ready {
            self.child = Some(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
        ready
    }

    /// Stops Redis (the outage begins).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A counter of `INFO` (`total_reads_processed`, or
    /// `cmdstat_publish`'s `calls`), read over a plain connection.
    pub fn info_counter(&self, section: &str, name: &str) -> u64 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("INFO {section}\r\n").as_bytes())
            .unwrap();
        // `$LEN\r\n` then LEN bytes and `\r\n`.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let text = loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "Redis closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            let t = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, rest)) = t.split_once("\r\n") {
                let len: usize = head.trim_start_matches('$').parse().unwrap();
                if rest.len() >= len {
                    break rest[..len].to_owned();
                }
            }
        };
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(&format!("{name}:")) {
                let v = v.split(',').next().unwrap_or(v);
                let v = v.strip_prefix("calls=").unwrap_or(v);
                return v.trim().parse().unwrap();
            }
        }
        0
    }

    /// Starts Redis again on the same port (the outage ends).
    pub fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not come back");
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of real `redis-server`s (masters only), each owning an
/// equal share of the 16384 hash slots, with ports the OS picked (the
/// cluster bus too).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts `n` nodes, gives each its slots, makes them meet, and waits
    /// until every node says the cluster is ok.
    pub fn start(n: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "chathub-redis-cluster-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        let mut buses = Vec::new();
        for i in 0..n {
            let bus = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let args: Vec<std::ffi::OsString> = vec![
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-port".into(),
                bus.to_string().into(),
                "--cluster-config-file".into(),
                format!("nodes-{i}.conf").into(),
                "--cluster-node-timeout".into(),
                "2000".into(),
                "--dir".into(),
                dir.clone().into_os_string(),
            ];
            nodes.push(RedisServer::start_with(false, args));
            buses.push(bus);
        }
        for (i, node) in nodes.iter().enumerate() {
            let first = i * 16384 / n;
            let last = (i + 1) * 16384 / n - 1;
            let reply = node.command(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]);
            assert!(reply.starts_with("+OK"), "ADDSLOTSRANGE: {reply}");
        }
        for (node, bus) in nodes.iter().zip(&buses).skip(1) {
            let reply = nodes[0].command(&[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &node.port.to_string(),
                &bus.to_string(),
            ]);
            assert!(reply.starts_with("+OK"), "MEET: {reply}");
        }
        let cluster = RedisCluster { nodes, dir };
        cluster.await_ok();
        cluster
    }

    /// Waits (bounded) until every node says `cluster_state:ok` and knows
    /// every node.
    pub fn await_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.nodes.iter().all(|node| {
                let info = node.command(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{}", self.nodes.len()))
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the Redis Cluster did not form");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed URL (the first node).
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// The node that owns `key`'s hash slot (Redis's own answer).
    pub fn owner(&self, key: &str) -> usize {
        let reply = self.nodes[0].command(&["CLUSTER", "KEYSLOT", key]);
        let slot: usize = reply.trim_start_matches(':').trim().parse().unwrap();
        slot * self.nodes.len() / 16384
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// Sends one command over a plain connection; its reply as raw RESP
    /// text (`+OK`, `:12`, a bulk string's `$LEN` line and text…).
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "Redis closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            let t = String::from_utf8_lossy(&buf).into_owned();
            let Some((head, rest)) = t.split_once("\r\n") else {
                continue;
            };
            // A bulk string: wait for all of it; anything else is one line.
            if let Some(len) = head.strip_prefix('$') {
                let len: i64 = len.parse().unwrap();
                if len < 0 || rest.len() >= len as usize {
                    return t;
                }
            } else {
                return t;
            }
        }
    }
}
