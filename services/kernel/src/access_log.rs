//! The access line: one JSON log line per request, encoded here rather than by `tracing`'s
//! JSON formatter.
//!
//! The line is the same as the formatter's (`timestamp`, `level`, the fields flattened,
//! `target`), but through the formatter it was the most expensive thing the gateway did for a
//! request: every field formatted into its own string, then serialised again (about a fifth of
//! the gateway's user-space instructions per proxied request, `valgrind --tool=callgrind`,
//! docs/benchmarks.md). Here the fields are written straight into a per-thread buffer and the
//! line goes out in one `write(2)`, like every other line ([`crate::log_lines`]).
//!
//! Only with the JSON format: the text format, and a process that never installed logging
//! (tests with their own subscriber), get the access line as an ordinary `tracing` event
//! ([`AccessLine::log`] decides).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;

use crate::client_address::IpText;
use crate::log_lines::LogLines;
use crate::span_fields::Escaped;

/// Where access lines go once JSON logging is installed.
static SINK: OnceLock<LogLines> = OnceLock::new();

/// The `target` of the line, as `tracing` would name it: the module that logs it.
const TARGET: &str = "kernel::http";

thread_local! {
    /// Reused for every line of the thread: a line costs no allocation once it has grown.
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
    /// The timestamp's date and time to the second, made again only when the second changes:
    /// `chrono`'s formatting costs more than the rest of the line.
    static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Sends access lines to `out` from now on (the first call wins, like the subscriber's).
pub(crate) fn install(out: LogLines) {
    let _ = SINK.set(out);
}

/// One request as its access line tells it.
pub(crate) struct AccessLine<'a> {
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub listener: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub client: Option<IpAddr>,
}

impl AccessLine<'_> {
    /// Logs the line at INFO under the target `kernel::http`, if the filter lets that through:
    /// encoded here when JSON logging is installed, as an ordinary `tracing` event otherwise
    /// (the text format, or a test's own subscriber). The request's ids are fields of the line
    /// itself, not of a span around it: the JSON formatter re-parses a span's stored fields
    /// for every line it writes inside one.
    pub(crate) fn log(&self) {
        if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            return;
        }
        if !self.write() {
            let client = self.client.map(IpText::new);
            tracing::info!(
                target: TARGET,
                request_id = self.request_id,
                trace_id = self.trace_id,
                span_id = self.span_id,
                listener = self.listener,
                method = self.method,
                path = self.path,
                status = self.status,
                duration_ms = self.duration_ms,
                client = client.as_ref().map_or("", IpText::as_str),
                "access"
            );
        }
    }

    /// Writes the encoded line to the JSON sink; false when none is installed.
    fn write(&self) -> bool {
        let Some(sink) = SINK.get() else {
            return false;
        };
        BUFFER.with(|buffer| {
            let Ok(mut buf) = buffer.try_borrow_mut() else {
                // Only if writing a line could re-enter this function, which it cannot.
                return false;
            };
            buf.clear();
            self.encode(chrono::Utc::now(), &mut buf);
            // A log line that cannot be written is dropped, as the formatter drops it.
            let _ = sink.make_writer().write_all(buf.as_bytes());
            true
        })
    }

    fn encode(&self, now: chrono::DateTime<chrono::Utc>, buf: &mut String) {
        // Writing into a String cannot fail; the results are ignored for that reason only.
        buf.push_str("{\"timestamp\":\"");
        timestamp(buf, now);
        buf.push_str("\",\"level\":\"INFO\",\"message\":\"access\"");
        for (key, value) in [
            ("request_id", self.request_id),
            ("trace_id", self.trace_id),
            ("span_id", self.span_id),
            ("listener", self.listener),
            ("method", self.method),
            ("path", self.path),
        ] {
            buf.push_str(",\"");
            buf.push_str(key);
            buf.push_str("\":");
            string(buf, value);
        }
        let _ = write!(buf, ",\"status\":{},\"duration_ms\":", self.status);
        if self.duration_ms.is_finite() {
            let _ = write!(buf, "{}", self.duration_ms);
        } else {
            // JSON has no NaN or infinity (nor has a clock that works).
            buf.push_str("null");
        }
        buf.push_str(",\"client\":\"");
        if let Some(ip) = self.client {
            // An address has nothing to escape.
            buf.push_str(IpText::new(ip).as_str());
        }
        buf.push_str("\",\"target\":\"");
        buf.push_str(TARGET);
        buf.push_str("\"}\n");
    }
}

/// RFC 3339 in UTC with microseconds, as the formatter writes it: `2026-12-07T13:07:01.123456Z`.
fn timestamp(buf: &mut String, now: chrono::DateTime<chrono::Utc>) {
    let second = now.timestamp();
    SECOND.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cached) => {
            if cached.0 != second {
                *cached = (second, now.format("%Y-%m-%dT%H:%M:%S").to_string());
            }
            buf.push_str(&cached.1);
        }
        Err(_) => {
            let _ = write!(buf, "{}", now.format("%Y-%m-%dT%H:%M:%S"));
        }
    });
    let _ = write!(buf, ".{:06}Z", now.timestamp_subsec_micros());
}

/// A JSON string, escaped.
fn string(buf: &mut String, s: &str) {
    buf.push('"');
    let _ = Escaped(buf).write_str(s);
    buf.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request every test here logs, at `path` from `client`.
    fn sample(path: &str, client: Option<IpAddr>) -> AccessLine<'_> {
        AccessLine {
            request_id: "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            span_id: "00f067aa0ba902b7",
            listener: "public",
            method: "GET",
            path,
            status: 404,
            duration_ms: 0.3125,
            client,
        }
    }

    fn line(path: &str, client: Option<IpAddr>) -> serde_json::Value {
        let mut buf = String::new();
        sample(path, client).encode(
            chrono::DateTime::parse_from_rfc3339("2026-12-07T13:07:01.123456Z")
                .unwrap()
                .to_utc(),
            &mut buf,
        );
        assert!(buf.ends_with('\n'), "one line, ended");
        assert_eq!(buf.matches('\n').count(), 1);
        serde_json::from_str(&buf).expect("valid JSON")
    }

    /// The same line as `tracing`'s JSON formatter writes it (no sink is installed in unit
    /// tests, so `log` takes the event path).
    fn formatters_line(client: Option<IpAddr>) -> serde_json::Value {
        let captured = crate::testing::CapturedLines::default();
        let subscriber = crate::telemetry::json_subscriber(
            tracing_subscriber::EnvFilter::new("info"),
            captured.clone(),
        );
        tracing::subscriber::with_default(subscriber, || sample("/api/users/me", client).log());
        let text = captured.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        serde_json::from_str(&text).expect("valid JSON")
    }

    #[test]
    fn the_line_is_the_formatters_line() {
        for client in [Some("127.0.0.1".parse().unwrap()), None] {
            let mut ours = line("/api/users/me", client);
            let mut theirs = formatters_line(client);
            // The clocks differ; the shape is checked below.
            ours["timestamp"].take();
            theirs["timestamp"].take();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn the_line_has_the_formatters_shape() {
        let v = line("/api/users/me", Some("127.0.0.1".parse().unwrap()));
        // Again in the same second: the cached part of the timestamp is the same.
        assert_eq!(line("/", None)["timestamp"], "2026-12-07T13:07:01.123456Z");
        assert_eq!(
            v,
            serde_json::json!({
                "timestamp": "2026-12-07T13:07:01.123456Z",
                "level": "INFO",
                "message": "access",
                "request_id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "listener": "public",
                "method": "GET",
                "path": "/api/users/me",
                "status": 404,
                "duration_ms": 0.3125,
                "client": "127.0.0.1",
                "target": "kernel::http",
            })
        );
    }

    #[test]
    fn what_a_client_sent_is_escaped() {
        let path = "/a\"b\\c\u{1}d\nfin";
        let v = line(path, Some("::1".parse().unwrap()));
        assert_eq!(v["path"], path);
        assert_eq!(v["client"], "::1");
        assert_eq!(line("/", None)["client"], "");
    }
}
