//! A span's fields as a JSON object, for the JSON log format.
//!
//! The JSON formatter keeps each span's fields as text, made when the span is created, and
//! copies them into every line logged inside the span. Its own field formatter builds a map of
//! `serde_json` values, each field formatted into a string of its own, then serialises the map:
//! for the request span the kernel opens around every request, that was a tenth of the
//! gateway's user-space instructions per proxied request (`valgrind --tool=callgrind`,
//! docs/benchmarks.md). This one writes the object straight into the span's text, escaping as it
//! goes. Lines look the same: the formatter parses the object back when it writes a line.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

thread_local! {
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The field formatter of the JSON format (see the module's documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        // Written whole into a buffer of the thread's first, then into the span's text at once:
        // that text starts empty, and written piece by piece it grew (and was copied) four or
        // five times for the request span, through a dynamic call per piece.
        let mut fields = Some(fields);
        let buffered = SCRATCH.try_with(|scratch| {
            let mut buf = scratch.try_borrow_mut().ok()?;
            buf.clear();
            let written =
                write_object(&mut *buf, fields.take()?).and_then(|()| writer.write_str(&buf));
            // One unusually large span does not keep its buffer for the thread's life.
            if buf.capacity() > 4096 {
                *buf = String::new();
            }
            Some(written)
        });
        match (buffered, fields) {
            (Ok(Some(written)), _) => written,
            // A span made while formatting another (a `Debug` impl that logs), or while the
            // thread's storage is being torn down: written directly.
            (_, Some(fields)) => write_object(&mut writer, fields),
            (_, None) => Err(fmt::Error),
        }
    }

    /// Fields recorded after the span was created (`Span::record`): rare, so merged the simple
    /// way, through a parsed map, where a field recorded again replaces its old value.
    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        write_object(&mut added, fields)?;
        if current.fields.is_empty() {
            current.fields = added;
            return Ok(());
        }
        let mut merged: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?;
        let new: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&added).map_err(|_| fmt::Error)?;
        merged.extend(new);
        current.fields = serde_json::to_string(&merged).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

fn write_object<W: Write>(out: &mut W, fields: impl RecordFields) -> fmt::Result {
    out.write_char('{')?;
    let mut object = Object {
        out: &mut *out,
        first: true,
        result: Ok(()),
    };
    fields.record(&mut object);
    object.result?;
    out.write_char('}')
}

/// Writes `"name":value` pairs; the first error stops the rest.
struct Object<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: Write> Object<'_, W> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.out.write_char(',')?;
            }
            self.first = false;
            self.out.write_char('"')?;
            Escaped(&mut *self.out).write_str(field.name())?;
            self.out.write_str("\":")?;
            value(self.out)
        })();
    }
}

impl<W: Write> Visit for Object<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |out| {
            out.write_char('"')?;
            Escaped(&mut *out).write_str(value)?;
            out.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, their Debug being their Display.
        self.entry(field, |out| {
            out.write_char('"')?;
            write!(Escaped(&mut *out), "{value:?}")?;
            out.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.entry(field, |out| write!(out, "{value}"));
        } else {
            // JSON has no NaN or infinity; serde_json writes them as null too.
            self.entry(field, |out| out.write_str("null"));
        }
    }
}

/// Writes what it is given as the inside of a JSON string.
pub(crate) struct Escaped<'a, W: Write>(pub &'a mut W);

/// Which bytes a JSON string cannot hold as they are: `"`, `\\` and the control characters.
const fn needs_escape(b: u8) -> bool {
    // `|`, not `||`: no branches, so a check over a whole string is vectorised.
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // The usual case (ids, paths, names): nothing to escape, written in one piece. The
        // test has no early exit, so the compiler does it 16 bytes at a time.
        let escape = s.bytes().fold(false, |any, b| any | needs_escape(b));
        if !escape {
            return self.0.write_str(s);
        }
        // Everything that needs escaping is ASCII, so byte positions are char boundaries.
        let mut plain = 0;
        for (i, &b) in s.as_bytes().iter().enumerate() {
            if !needs_escape(b) {
                continue;
            }
            self.0.write_str(s.get(plain..i).unwrap_or_default())?;
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{:04x}", b)?,
            }
            plain = i + 1;
        }
        self.0.write_str(s.get(plain..).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    /// The lines a closure logs, through the JSON format of `telemetry::init_logging`.
    fn lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = crate::testing::CapturedLines::default();
        let subscriber = crate::telemetry::json_subscriber(
            tracing_subscriber::EnvFilter::new("trace"),
            captured.clone(),
        );
        tracing::subscriber::with_default(subscriber, f);
        let text = captured.text();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn a_lines_span_has_every_field_with_its_type() {
        let odd = "quote \" backslash \\ newline \n bell \u{7} é";
        let got = lines(|| {
            let span = tracing::info_span!(
                "request",
                request_id = %"r-1",
                path = odd,
                n = 7u64,
                delta = -3i64,
                ok = true,
                ratio = 0.5f64,
                nan = f64::NAN,
                debug = ?vec![1, 2],
            );
            let _in = span.enter();
            tracing::warn!("inside");
        });
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0]["span"],
            serde_json::json!({
                "name": "request",
                "request_id": "r-1",
                "path": odd,
                "n": 7,
                "delta": -3,
                "ok": true,
                "ratio": 0.5,
                "nan": null,
                "debug": "[1, 2]",
            })
        );
    }

    #[test]
    fn fields_recorded_later_join_the_object() {
        let got = lines(|| {
            let span = tracing::info_span!("job", id = 1u64, state = tracing::field::Empty);
            span.record("state", "running");
            span.record("id", 2u64);
            let _in = span.enter();
            tracing::info!("step");
        });
        assert_eq!(got[0]["span"]["id"], 2);
        assert_eq!(got[0]["span"]["state"], "running");

        let got = lines(|| {
            let span = tracing::info_span!("bare");
            let _in = span.enter();
            tracing::info!("no fields");
        });
        assert_eq!(got[0]["span"], serde_json::json!({"name": "bare"}));
    }
}
