//! TLS on the hub's listener (HTTPS, WSS, a certificate swapped while the
//! hub runs) and Redis over TLS (`rediss://` with a user and a password).
//! Certificates come from the `openssl` command, signed by a CA made for
//! each test; nothing trusts them but the clients here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chathub::{Hub, HubConfig, Pem, StartError, TlsError};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::{TestHub, WAIT, config};

/// A CA and the server certificates it signs (localhost, 127.0.0.1).
struct Ca {
    dir: PathBuf,
}

/// A certificate and its key, as files.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Ca {
    fn new() -> Ca {
        let dir = std::env::temp_dir().join(format!(
            "chathub-tls-{}-{}",
            std::process::id(),
            chathub_test_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=chathub test CA",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        Ca { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn issue(&self, name: &str) -> Leaf {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        Leaf {
            cert: self.dir.join(pem),
            key: self.dir.join(key),
        }
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A number unique in this process, for folder names.
fn chathub_test_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A TLS client that trusts `ca` only.
fn connector(ca: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the hub, checked against `ca`.
async fn dial(hub: &Hub, ca: &Path) -> Tls {
    let tcp = tokio::net::TcpStream::connect(hub.local_addr().unwrap())
        .await
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector(ca).connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

/// The certificate a new connection is served (DER).
async fn served(hub: &Hub, ca: &Path) -> Vec<u8> {
    let tls = dial(hub, ca).await;
    let (_, conn) = tls.get_ref();
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    conn.peer_certificates().unwrap()[0].to_vec()
}

fn der(leaf: &Leaf) -> Vec<u8> {
    CertificateDer::from_pem_file(&leaf.cert).unwrap().to_vec()
}

fn tls_config(leaf: &Leaf) -> HubConfig {
    HubConfig {
        tls_cert: Some(Pem::File(leaf.cert.clone())),
        tls_key: Some(Pem::File(leaf.key.clone())),
        ..config()
    }
}

#[tokio::test]
async fn the_chat_runs_over_https_and_wss() {
    let ca = Ca::new();
    let leaf = ca.issue("hub");
    let hub = TestHub::with(tls_config(&leaf));
    assert!(hub.hub.is_tls());

    // Long-polling's handshake over HTTPS.
    let mut tls = dial(&hub.hub, &ca.cert()).await;
    tls.write_all(
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, tls.read_to_string(&mut answer))
        .await
        .expect("answer in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("0{\"sid\":"), "{answer}");

    // The chat over WSS: connect, the prompt, a login.
    let tls = dial(&hub.hub, &ca.cert()).await;
    let url = "wss://localhost/socket.io/?EIO=4&transport=websocket";
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    assert!(text(&mut ws).await.starts_with("0{"));
    ws.send(Message::text("40/chat,")).await.unwrap();
    let connect = text(&mut ws).await;
    assert!(connect.starts_with("40/chat,{\"sid\":"), "{connect}");
    assert_eq!(text(&mut ws).await, r#"42/chat,["login"]"#);
    ws.send(Message::text(r#"42/chat,["login","ann"]"#))
        .await
        .unwrap();
    let line = text(&mut ws).await;
    assert_eq!(
        line,
        r#"42/chat,["serverMessage","Currently logged in as ann"]"#
    );
}

/// The next text frame.
async fn text(ws: &mut tokio_tungstenite::WebSocketStream<Tls>) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the WebSocket is open")
            .expect("a frame");
        if let Message::Text(t) = msg {
            return t.to_string();
        }
    }
}

#[tokio::test]
async fn a_new_certificate_reaches_new_connections_only_when_it_is_usable() {
    let ca = Ca::new();
    let first = ca.issue("first");
    let second = ca.issue("second");
    let third = ca.issue("third");
    // The hub reads these two files; they change under it.
    let (cert, key) = (ca.dir.join("serving.pem"), ca.dir.join("serving.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let hub = TestHub::with(HubConfig {
        tls_cert: Some(Pem::File(cert.clone())),
        tls_key: Some(Pem::File(key.clone())),
        ..config()
    });
    let open = dial(&hub.hub, &ca.cert()).await;
    assert_eq!(served(&hub.hub, &ca.cert()).await, der(&first));

    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    hub.hub.reload_tls().unwrap();
    assert_eq!(served(&hub.hub, &ca.cert()).await, der(&second));
    // A connection opened before keeps its session.
    assert_eq!(
        open.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        der(&first)
    );

    // A key that is not the certificate's: refused, the hub keeps serving
    // the pair it had.
    std::fs::copy(&third.key, &key).unwrap();
    let e = hub.hub.reload_tls().unwrap_err();
    assert!(matches!(e, TlsError::Invalid(_)), "{e:?}");
    assert!(
        e.to_string().contains("does not belong to the certificate"),
        "{e}"
    );
    std::fs::remove_file(&key).unwrap();
    let e = hub.hub.reload_tls().unwrap_err();
    assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
    assert_eq!(served(&hub.hub, &ca.cert()).await, der(&second));

    // PEM bytes from the host.
    hub.hub
        .set_tls(
            Pem::Bytes(std::fs::read(&third.cert).unwrap()),
            Pem::Bytes(std::fs::read(&third.key).unwrap()),
        )
        .unwrap();
    assert_eq!(served(&hub.hub, &ca.cert()).await, der(&third));
    hub.hub.reload_tls().unwrap();
    assert_eq!(served(&hub.hub, &ca.cert()).await, der(&third));
}

#[test]
fn unusable_tls_settings_are_refused_with_the_reason() {
    let ca = Ca::new();
    let a = ca.issue("a");
    let b = ca.issue("b");
    let start = |cert: Pem, key: Pem| {
        Hub::start(HubConfig {
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..config()
        })
        .map(|hub| hub.shutdown())
        .unwrap_err()
        .to_string()
    };
    let e = start(Pem::File(a.cert.clone()), Pem::File(b.key.clone()));
    assert!(e.contains("does not belong to the certificate"), "{e}");
    let e = start(
        Pem::File(a.cert.clone()),
        Pem::File(ca.dir.join("missing.key")),
    );
    assert!(
        e.starts_with("cannot use the TLS certificate and key: cannot read"),
        "{e}"
    );
    assert!(e.contains("missing.key"), "{e}");
    let e = start(
        Pem::Bytes(b"no pem here".to_vec()),
        Pem::File(a.key.clone()),
    );
    assert!(e.contains("no CERTIFICATE"), "{e}");
    // The key's text never reaches a message.
    let e = start(Pem::File(a.cert.clone()), Pem::Bytes(b"secret".to_vec()));
    assert!(!e.contains("secret"), "{e}");
    assert!(format!("{:?}", Pem::Bytes(b"secret".to_vec())).contains("6 bytes"));

    let half = Hub::start(HubConfig {
        tls_cert: Some(Pem::File(a.cert.clone())),
        ..config()
    });
    assert!(
        matches!(half, Err(StartError::InvalidConfig(ref m)) if m.contains("tls_cert and tls_key"))
    );
    let plain = Hub::start(config()).unwrap();
    assert!(!plain.is_tls());
    assert!(matches!(plain.reload_tls(), Err(TlsError::NotConfigured)));
    plain.shutdown();
}

/// A `redis-server` speaking TLS only, with the ACL user `alice`.
struct TlsRedis(crate::redis::RedisServer);

impl TlsRedis {
    fn start(ca: &Ca) -> TlsRedis {
        let leaf = ca.issue("redis");
        let mut args: Vec<std::ffi::OsString> = vec![
            "--tls-cert-file".into(),
            leaf.cert.clone().into(),
            "--tls-key-file".into(),
            leaf.key.clone().into(),
            "--tls-ca-cert-file".into(),
            ca.cert().into(),
        ];
        for a in [
            "--tls-auth-clients",
            "no",
            "--user",
            "default",
            "off",
            "--user",
            "alice",
            "on",
            ">s3cret",
            "~*",
            "&*",
            "+@all",
        ] {
            args.push(a.into());
        }
        TlsRedis(crate::redis::RedisServer::start_with(true, args))
    }

    fn url(&self, password: &str) -> String {
        format!("rediss://alice:{password}@127.0.0.1:{}", self.0.port)
    }
}

#[tokio::test]
async fn hubs_join_over_rediss_with_a_user_and_password() {
    if !crate::redis::available() {
        return;
    }
    let ca = Ca::new();
    let redis = TlsRedis::start(&ca);
    let node = |url: String| HubConfig {
        redis_url: Some(url),
        redis_tls_ca: Some(ca.cert()),
        ..config()
    };
    let a = TestHub::with(node(redis.url("s3cret")));
    let b = TestHub::with(node(redis.url("s3cret")));
    let mut ann = a.client("/chat").await;
    let mut bob = b.client("/chat").await;
    ann.login("ann").await;
    bob.expect_line("User ann Logged in").await;
    bob.login("bob").await;
    ann.expect_line("User bob Logged in").await;
    bob.say("over rediss").await;
    ann.expect_line("bob said: over rediss").await;

    // A wrong password, or a Redis certificate the hub does not trust: the
    // hub does not start, and says why without the password.
    let e = Hub::start(node(redis.url("wrong"))).unwrap_err();
    assert!(matches!(e, StartError::Redis { .. }), "{e:?}");
    let text = e.to_string();
    assert!(!text.contains("wrong"), "{text}");
    assert!(text.contains("rediss://***@127.0.0.1"), "{text}");
    let e = Hub::start(HubConfig {
        redis_tls_ca: None,
        ..node(redis.url("s3cret"))
    })
    .unwrap_err();
    assert!(matches!(e, StartError::Redis { .. }), "{e:?}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}
