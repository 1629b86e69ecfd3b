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
