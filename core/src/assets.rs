//! The files the hub serves: the chat page and the Socket.IO client bundle.
//!
//! Both are read once at start and served from memory. The client bundle
//! comes from the npm package `socket.io-client` (never a copy in this
//! repository): see [`HubConfig::client_dist`](crate::HubConfig::client_dist).

use std::path::{Path, PathBuf};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::config::HubConfig;
use crate::error::StartError;

/// The built-in chat page: the chapter's final client.
pub(crate) const CHAT_PAGE: &str = include_str!("../assets/index.html");

/// The files of `socket.io-client/dist` served under `/socket.io/`.
const BUNDLE_FILES: [(&str, &str); 6] = [
    ("socket.io.js", "application/javascript; charset=utf-8"),
    ("socket.io.min.js", "application/javascript; charset=utf-8"),
    (
        "socket.io.esm.min.js",
        "application/javascript; charset=utf-8",
    ),
    ("socket.io.js.map", "application/json"),
    ("socket.io.min.js.map", "application/json"),
    ("socket.io.esm.min.js.map", "application/json"),
];

#[derive(Debug, Clone)]
struct File {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl File {
    fn new(body: Bytes, content_type: &'static str) -> File {
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(&body)))
            .expect("a hex string is a valid header value");
        File {
            body,
            content_type,
            etag,
        }
    }

    fn respond(&self, req_headers: &HeaderMap) -> Response<Body> {
        let mut resp = Response::new(Body::empty());
        let fresh = req_headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == self.etag.as_bytes());
        if fresh {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
        } else {
            *resp.body_mut() = Body::from(self.body.clone());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
        }
        let h = resp.headers_mut();
        h.insert(header::ETAG, self.etag.clone());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        );
        resp
    }
}

/// 64-bit FNV-1a, for ETags.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the hub serves besides Socket.IO.
#[derive(Debug, Clone)]
pub(crate) struct Assets {
    page: Option<File>,
    bundle: Vec<(String, File)>,
    /// The folder the bundle was read from (`None`: none was found).
    pub(crate) bundle_dir: Option<PathBuf>,
}

impl Assets {
    /// Loads the page and the client bundle as `config` says.
    pub(crate) fn load(config: &HubConfig) -> Result<Assets, StartError> {
        let page = if !config.serve_page {
            None
        } else if let Some(path) = &config.page_path {
            let body = std::fs::read(path).map_err(|source| StartError::File {
                path: path.clone(),
                source,
            })?;
            Some(File::new(Bytes::from(body), "text/html; charset=utf-8"))
        } else {
            Some(File::new(
                Bytes::from_static(CHAT_PAGE.as_bytes()),
                "text/html; charset=utf-8",
            ))
        };
        let mut bundle = Vec::new();
        let mut bundle_dir = None;
        match find_client_dist(config) {
            Some(dir) => {
                for (name, content_type) in BUNDLE_FILES {
                    let path = dir.join(name);
                    match std::fs::read(&path) {
                        Ok(body) => bundle.push((
                            format!("/socket.io/{name}"),
                            File::new(Bytes::from(body), content_type),
                        )),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => return Err(StartError::File { path, source }),
                    }
                }
                if bundle.is_empty() {
                    tracing::warn!(dir = %dir.display(), "no Socket.IO client bundle in this folder; /socket.io/socket.io.js will answer 404");
                } else {
                    tracing::debug!(dir = %dir.display(), "serving the Socket.IO client bundle");
                    bundle_dir = Some(dir);
                }
            }
            None => tracing::warn!(
                "socket.io-client not found (run `npm install` in the project, or set \
                 client_dist / CHATHUB_CLIENT_DIST); /socket.io/socket.io.js will answer 404"
            ),
        }
        Ok(Assets {
            page,
            bundle,
            bundle_dir,
        })
    }

    /// The response for `path`, if it is one of ours.
    pub(crate) fn respond(&self, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
        if path == "/" || path == "/index.html" {
            return self.page.as_ref().map(|p| p.respond(headers));
        }
        if let Some(file) = self.bundle.iter().find(|(p, _)| p == path) {
            return Some(file.1.respond(headers));
        }
        let bundle_file = path
            .strip_prefix("/socket.io/")
            .is_some_and(|name| BUNDLE_FILES.iter().any(|(n, _)| *n == name));
        if bundle_file {
            // Not an Engine.IO request: say what is missing.
            let mut resp = Response::new(Body::from(
                "no Socket.IO client bundle on this server (set client_dist or CHATHUB_CLIENT_DIST)\n",
            ));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return Some(resp);
        }
        None
    }
}

/// Where `socket.io-client/dist` is, as [`HubConfig::client_dist`] documents.
fn find_client_dist(config: &HubConfig) -> Option<PathBuf> {
    if let Some(dir) = &config.client_dist {
        return Some(dir.clone());
    }
    if let Some(dir) = std::env::var_os("CHATHUB_CLIENT_DIST") {
        return Some(PathBuf::from(dir));
    }
    // Never a path of the machine the library was built on: a deployed
    // host looks where it was installed, then where it runs.
    if let Some(dir) = installed_client_dist() {
        return Some(dir);
    }
    let rel = Path::new("node_modules/socket.io-client/dist");
    std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.ancestors().map(|d| d.join(rel)).find(|d| d.is_dir()))
}

/// Where `make install` puts the bundle, relative to the file this code
/// was loaded from: `PREFIX/lib/libchathub.so` (or a program in
/// `PREFIX/bin` linked with `libchathub.a`) looks in
/// `PREFIX/share/chathub/socket.io-client`. Relative, so an installed tree
/// can be moved or staged (`DESTDIR`) and still finds its bundle.
pub(crate) const INSTALLED_CLIENT_DIST: &str = "share/chathub/socket.io-client";

/// [`INSTALLED_CLIENT_DIST`] beside the object that holds this function,
/// if it has the bundle.
fn installed_client_dist() -> Option<PathBuf> {
    let object = loaded_from()?;
    let prefix = object.parent()?.parent()?;
    let dir = prefix.join(INSTALLED_CLIENT_DIST);
    dir.join("socket.io.js").is_file().then_some(dir)
}

/// The file (shared library or executable) this code was loaded from.
#[cfg(unix)]
fn loaded_from() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let addr = loaded_from as *const libc::c_void;
    // SAFETY: `addr` is an address inside this object's code, and `info`
    // is valid for writing one `Dl_info`; dladdr writes it and returns
    // non-zero on success.
    let found = unsafe { libc::dladdr(addr, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr succeeded, so it initialised `info`.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dli_fname` is a NUL-terminated path owned by the dynamic
    // loader, valid while the object stays loaded (it holds this code).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    // A program's own name may be relative to where it was started.
    std::fs::canonicalize(path).ok()
}

/// The file this code was loaded from (not known on this platform).
#[cfg(not(unix))]
fn loaded_from() -> Option<PathBuf> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_and_etag() {
        let config = HubConfig {
            client_dist: Some(PathBuf::from("/nonexistent")),
            ..Default::default()
        };
        let assets = Assets::load(&config).unwrap();
        let resp = assets.respond("/", &HeaderMap::new()).unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let etag = resp.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            assets.respond("/", &h).unwrap().status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            assets
                .respond("/socket.io/socket.io.js", &HeaderMap::new())
                .map(|r| r.status()),
            Some(StatusCode::NOT_FOUND),
            "a missing bundle is a 404 that says so"
        );
        assert!(assets.respond("/other", &HeaderMap::new()).is_none());
    }

    #[test]
    fn no_page_when_disabled() {
        let config = HubConfig {
            serve_page: false,
            ..Default::default()
        };
        assert!(
            Assets::load(&config)
                .unwrap()
                .respond("/", &HeaderMap::new())
                .is_none()
        );
    }

    #[test]
    fn the_page_runs_the_chapter_client() {
        for needle in [
            "/socket.io/socket.io.js",
            "'clientMessage'",
            "'join'",
            "'login'",
            "/j",
        ] {
            assert!(CHAT_PAGE.contains(needle), "{needle}");
        }
        assert!(!CHAT_PAGE.contains("localhost:3000"));
    }
}
