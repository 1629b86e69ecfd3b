//! The hub's logs for hosts that are not Rust programs with a `tracing`
//! subscriber of their own: to standard error, or to a callback (level,
//! target, message), filtered as `RUST_LOG` filters (`info`,
//! `chathub=debug`, …).
//!
//! A Rust host sets up `tracing` as it likes and needs none of this. The C
//! and Node faces call it for their hosts. Logging is process-wide: it can
//! be set up once per process.

use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One log line.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// 1 error, 2 warn, 3 info, 4 debug, 5 trace.
    pub level: u32,
    /// Where it comes from (`chathub::cluster`, …).
    pub target: String,
    /// The message, then its fields as `key=value`.
    pub message: String,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter does not parse.
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter {
        /// The filter given.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Logging was set up already in this process (by an earlier call, or
    /// by the host's own `tracing` subscriber).
    #[error("logging is already set up in this process")]
    AlreadySet,
}

/// The level number of a record (1 error … 5 trace).
fn level_number(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn filter(spec: &str) -> Result<EnvFilter, LogError> {
    let spec = if spec.trim().is_empty() { "info" } else { spec };
    EnvFilter::try_new(spec).map_err(|e| LogError::Filter {
        filter: spec.to_owned(),
        reason: e.to_string(),
    })
}

/// How lines written to standard error look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Text for people: time, level, target, message, fields; colored only
    /// on a terminal.
    #[default]
    Plain,
    /// One JSON object per line, for log collectors: `{"ts": ms since the
    /// epoch, "level": "info", "target": "chathub::hub", "message": "…",
    /// "fields": {"addr": "…"}}`.
    Json,
}

/// Writes the logs to standard error, one line per event, colored only
/// when standard error is a terminal.
pub fn to_stderr(spec: &str) -> Result<(), LogError> {
    to_stderr_as(spec, LogFormat::Plain)
}

/// Writes the logs to standard error in `format`, one line per event.
pub fn to_stderr_as(spec: &str, format: LogFormat) -> Result<(), LogError> {
    if format == LogFormat::Json {
        let filter = filter(spec)?;
        let subscriber = tracing_subscriber::registry().with(filter).with(JsonLines);
        return tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| LogError::AlreadySet);
    }
    let filter = filter(spec)?;
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .finish();
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadySet)
}

/// Hands every log line that `spec` lets through to `sink`, from whichever
/// thread logs it (the hub's threads, or the caller's).
pub fn to_callback(
    spec: &str,
    sink: Arc<dyn Fn(LogRecord) + Send + Sync + 'static>,
) -> Result<(), LogError> {
    let filter = filter(spec)?;
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(Forward { sink });
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadySet)
}

/// The layer that hands records to a callback.
struct Forward {
    sink: Arc<dyn Fn(LogRecord) + Send + Sync + 'static>,
}

/// Collects an event's message and fields into one line.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
    /// The fields by name (for JSON lines).
    map: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields.push_str(&format!(" {}={value}", field.name()));
            self.map.insert(field.name().to_owned(), value.into());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push_str(&format!(" {}={value}", field.name()));
        self.map.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push_str(&format!(" {}={value}", field.name()));
        self.map.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push_str(&format!(" {}={value}", field.name()));
        self.map.insert(field.name().to_owned(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message.push_str(&format!("{value:?}"));
        } else {
            let text = format!("{value:?}");
            self.fields.push_str(&format!(" {}={text}", field.name()));
            self.map.insert(field.name().to_owned(), text.into());
        }
    }
}

/// The JSON line of an event.
fn json_line(event: &Event<'_>) -> String {
    let mut line = Line::default();
    event.record(&mut line);
    let meta = event.metadata();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let level = match level_number(meta.level()) {
        1 => "error",
        2 => "warn",
        3 => "info",
        4 => "debug",
        _ => "trace",
    };
    serde_json::json!({
        "ts": ts,
        "level": level,
        "target": meta.target(),
        "message": line.message,
        "fields": line.map,
    })
    .to_string()
}

/// The layer that writes JSON lines to standard error, each in one write.
struct JsonLines;

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        use std::io::Write as _;
        let mut text = json_line(event);
        text.push('\n');
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = Line::default();
        event.record(&mut line);
        let meta = event.metadata();
        (self.sink)(LogRecord {
            level: level_number(meta.level()),
            target: meta.target().to_owned(),
            message: line.message + &line.fields,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_clearly() {
        let err = to_stderr("chathub=loud").unwrap_err();
        assert!(err.to_string().contains("invalid log filter"), "{err}");
    }

    #[test]
    fn json_lines_have_level_target_message_and_typed_fields() {
        struct Capture(Arc<std::sync::Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                self.0.lock().unwrap().push(json_line(event));
            }
        }
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(filter("info").unwrap())
            .with(Capture(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(lost = 3_u64, node = "abc", up = false, "Redis lost");
        });
        let seen = seen.lock().unwrap();
        let v: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["message"], "Redis lost");
        assert_eq!(
            v["fields"],
            serde_json::json!({"lost": 3, "node": "abc", "up": false})
        );
        assert!(v["ts"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(v["target"].as_str().unwrap().contains("logs"));
        assert!(!seen[0].contains('\n'), "one line");
    }

    #[test]
    fn lines_have_their_message_then_their_fields() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let subscriber = tracing_subscriber::registry()
            .with(filter("info").unwrap())
            .with(Forward {
                sink: Arc::new(move |r| sink.lock().unwrap().push(r)),
            });
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(addr = "127.0.0.1:1", "chathub listening");
            tracing::debug!("not at info");
            tracing::warn!(n = 3, "lost {} messages", 3);
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (seen[0].level, seen[0].message.as_str()),
            (3, "chathub listening addr=127.0.0.1:1")
        );
        assert_eq!(
            (seen[1].level, seen[1].message.as_str()),
            (2, "lost 3 messages n=3")
        );
        assert!(seen[0].target.contains("logs"));
    }
}
