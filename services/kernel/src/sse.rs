//! Reading `text/event-stream` bodies (server-sent events), as model providers stream answers
//! and as the ai service streams them on to chat.
//!
//! [`Decoder`] follows the WHATWG "event stream interpretation": lines end in CRLF, LF or a lone
//! CR; `field: value` lines (one space after the colon dropped); `data` lines joined with `\n`;
//! lines starting with `:` are comments; a blank line dispatches the event; a leading BOM is
//! dropped. It is fed whatever the network delivered, so an event, a line, a CRLF pair or a
//! UTF-8 character may be split across chunks anywhere.
//!
//! The peer decides how long a line or an event is, so the decoder holds at most
//! `max_event_bytes` of one event (its data plus the line being read) and fails beyond that,
//! rather than growing until the process runs out of memory.

use bytes::Bytes;
use futures::Stream;
use futures::stream::{self, StreamExt};

/// What providers send is a few kilobytes per event at most; a megabyte leaves plenty of room.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, or `message` when the event named none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream so far (it carries over to later events).
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// The peer sent more than the decoder may hold for one event.
    #[error("an event is larger than {0} bytes")]
    TooLarge(usize),
    /// The stream ended in the middle of an event (no blank line after its last field).
    #[error("the stream ended in the middle of an event")]
    Incomplete,
    /// Reading the body failed (connection reset, timeout, ...).
    #[error("reading the stream failed: {0}")]
    Transport(String),
}

/// An incremental event-stream parser. Feed it chunks with [`Decoder::push`]; call
/// [`Decoder::finish`] when the body ends.
#[derive(Debug)]
pub struct Decoder {
    max_event_bytes: usize,
    /// Bytes of the line not yet terminated; decoded only once whole, so that a UTF-8
    /// character split across chunks is not mangled.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF starting the next one belongs to that CR.
    after_cr: bool,
    /// No line has been completed yet: a BOM may still start the stream.
    at_start: bool,
    event: Option<String>,
    data: String,
    /// Whether the current event has any field yet; tells `finish` whether it was cut.
    in_event: bool,
    last_id: Option<String>,
    retry_ms: Option<u64>,
}

impl Decoder {
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            in_event: false,
            last_id: None,
            retry_ms: None,
        }
    }

    /// The last `retry:` the server asked for, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Parses the next piece of the body and returns the events it completed, in order.
    /// After an error the decoder's state is unspecified; stop reading.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut out = Vec::new();
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.line.extend_from_slice(chunk);
                self.check_size()?;
                break;
            };
            self.line.extend_from_slice(&chunk[..end]);
            self.check_size()?;
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            chunk = &chunk[next..];
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_done(&line)? {
                out.push(event);
            }
        }
        Ok(out)
    }

    /// The body ended. Per the standard an event without its closing blank line is dropped;
    /// this says so, so that a caller can tell a cut stream from a finished one.
    pub fn finish(&mut self) -> Result<(), SseError> {
        if self.line.is_empty() && !self.in_event {
            Ok(())
        } else {
            self.line.clear();
            self.in_event = false;
            self.data.clear();
            self.event = None;
            Err(SseError::Incomplete)
        }
    }

    fn check_size(&self) -> Result<(), SseError> {
        if self.line.len() + self.data.len() > self.max_event_bytes {
            Err(SseError::TooLarge(self.max_event_bytes))
        } else {
            Ok(())
        }
    }

    fn line_done(&mut self, raw: &[u8]) -> Result<Option<Event>, SseError> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        if raw.is_empty() {
            return Ok(self.dispatch());
        }
        if raw[0] == b':' {
            return Ok(None);
        }
        let line = String::from_utf8_lossy(raw);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        self.in_event = true;
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.check_size()?;
            }
            // An id with NUL is ignored, as the standard says.
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        self.in_event = false;
        let event = self.event.take();
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        Some(Event {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
            id: self.last_id.clone(),
        })
    }
}

/// The events of a body given as a stream of chunks, in order. A transport error or a cut
/// final event ends the stream with an error.
pub fn events<S, B, E>(
    body: S,
    max_event_bytes: usize,
) -> impl Stream<Item = Result<Event, SseError>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    struct State<S> {
        body: S,
        decoder: Decoder,
        ended: bool,
    }
    let state = State {
        body,
        decoder: Decoder::new(max_event_bytes),
        ended: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let batch = match st.body.next().await {
            Some(Ok(chunk)) => st.decoder.push(chunk.as_ref()),
            Some(Err(e)) => Err(SseError::Transport(e.to_string())),
            None => {
                st.ended = true;
                st.decoder.finish().map(|()| Vec::new())
            }
        };
        let items: Vec<Result<Event, SseError>> = match batch {
            Ok(events) => events.into_iter().map(Ok).collect(),
            Err(e) => {
                st.ended = true;
                vec![Err(e)]
            }
        };
        Some((stream::iter(items), st))
    })
    .flatten()
}

/// The events of an HTTP response body, read chunk by chunk as they arrive.
pub fn response_events(
    response: reqwest::Response,
    max_event_bytes: usize,
) -> impl Stream<Item = Result<Event, SseError>> {
    let chunks = stream::unfold(Some(response), |r| async move {
        let mut r = r?;
        match r.chunk().await {
            Ok(Some(c)) => Some((Ok::<Bytes, reqwest::Error>(c), Some(r))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    events(Box::pin(chunks), max_event_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Event>, SseError> {
        let mut d = Decoder::new(DEFAULT_MAX_EVENT_BYTES);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.push(c)?);
        }
        d.finish()?;
        Ok(out)
    }

    /// Every feature at once, with the three line endings mixed, a BOM and a multi-byte
    /// character: the stream every split test cuts up.
    const MIXED: &[u8] = "\u{feff}: a comment\r\n\
        event: content_block_delta\r\n\
        data: {\"text\":\"한국\"}\r\n\
        \r\n\
        data: first line\n\
        data:second line\n\
        data\n\
        id: 7\n\
        \n\
        retry: 3000\r\
        event: ping\r\
        data: {}\r\
        \r\
        id: 8\n\
        \n\
        data: [DONE]\r\n\r\n"
        .as_bytes();

    fn mixed_expected() -> Vec<Event> {
        vec![
            ev("content_block_delta", "{\"text\":\"한국\"}", None),
            ev("message", "first line\nsecond line\n", Some("7")),
            ev("ping", "{}", Some("7")),
            ev("message", "[DONE]", Some("8")),
        ]
    }

    #[test]
    fn decodes_fields_comments_and_line_endings() {
        assert_eq!(decode_all(&[MIXED]).unwrap(), mixed_expected());
    }

    #[test]
    fn same_events_when_split_at_every_byte_boundary() {
        for at in 0..=MIXED.len() {
            let (a, b) = MIXED.split_at(at);
            assert_eq!(
                decode_all(&[a, b]).unwrap(),
                mixed_expected(),
                "split at byte {at}"
            );
        }
    }

    #[test]
    fn same_events_when_split_at_every_pair_of_boundaries() {
        for i in 0..=MIXED.len() {
            for j in i..=MIXED.len() {
                let parts = [&MIXED[..i], &MIXED[i..j], &MIXED[j..]];
                assert_eq!(
                    decode_all(&parts).unwrap(),
                    mixed_expected(),
                    "split at {i} and {j}"
                );
            }
        }
    }

    #[test]
    fn same_events_one_byte_at_a_time() {
        let bytes: Vec<&[u8]> = MIXED.chunks(1).collect();
        assert_eq!(decode_all(&bytes).unwrap(), mixed_expected());
    }

    #[test]
    fn events_are_given_as_soon_as_their_blank_line_arrives() {
        let mut d = Decoder::new(1024);
        assert_eq!(d.push(b"data: a\n").unwrap(), vec![]);
        assert_eq!(
            d.push(b"\ndata: b").unwrap(),
            vec![ev("message", "a", None)]
        );
        assert_eq!(d.push(b"\n\n").unwrap(), vec![ev("message", "b", None)]);
        d.finish().unwrap();
    }

    #[test]
    fn cr_at_the_end_of_a_chunk_then_lf_is_one_line_end() {
        // Were the LF taken for a second line end, "data: a" would be dispatched at once.
        let mut d = Decoder::new(1024);
        assert_eq!(d.push(b"data: a\r").unwrap(), vec![]);
        assert_eq!(d.push(b"\n").unwrap(), vec![]);
        assert_eq!(d.push(b"\r\n").unwrap(), vec![ev("message", "a", None)]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_its_name_is_forgotten() {
        let got = decode_all(&[b"event: x\nid: 1\n\ndata: y\n\n"]).unwrap();
        assert_eq!(got, vec![ev("message", "y", Some("1"))]);
    }

    #[test]
    fn a_field_line_without_colon_or_space_after_it() {
        let got = decode_all(&[b"data:a\ndata:  b\ndata\n\n"]).unwrap();
        assert_eq!(got, vec![ev("message", "a\n b\n", None)]);
    }

    #[test]
    fn unknown_fields_and_bad_retry_are_ignored() {
        let mut d = Decoder::new(1024);
        let got = d.push(b"foo: bar\nretry: 12x\ndata: z\n\n").unwrap();
        assert_eq!(got, vec![ev("message", "z", None)]);
        assert_eq!(d.retry_ms(), None);
        d.push(b"retry: 250\n\n").unwrap();
        assert_eq!(d.retry_ms(), Some(250));
    }

    #[test]
    fn a_cut_stream_is_reported() {
        assert_eq!(decode_all(&[b"data: half"]), Err(SseError::Incomplete));
        assert_eq!(
            decode_all(&[b"data: whole line\n"]),
            Err(SseError::Incomplete)
        );
        assert_eq!(decode_all(&[b"data: done\n\n"]).unwrap().len(), 1);
        assert_eq!(decode_all(&[b""]).unwrap(), vec![]);
    }

    #[test]
    fn a_peer_cannot_make_the_decoder_grow_without_limit() {
        let mut d = Decoder::new(64);
        // One endless line.
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = d.push(&[b'x'; 10]) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::TooLarge(64)));
        // Many short data lines that never end the event.
        let mut d = Decoder::new(64);
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = d.push(b"data: 0123456789\n") {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::TooLarge(64)));
        // The limit is per event: many small events are fine.
        let mut d = Decoder::new(64);
        for _ in 0..1000 {
            assert_eq!(d.push(b"data: 0123456789\n\n").unwrap().len(), 1);
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = decode_all(&[b"data: a\xFFb\n\n"]).unwrap();
        assert_eq!(got, vec![ev("message", "a\u{FFFD}b", None)]);
    }

    #[tokio::test]
    async fn a_chunk_stream_gives_its_events_then_its_error() {
        let chunks: Vec<Result<&[u8], String>> = vec![
            Ok(&b"data: 1\n\nda"[..]),
            Ok(&b"ta: 2\n\n"[..]),
            Err("connection reset".into()),
            Ok(&b"data: 3\n\n"[..]),
        ];
        let got: Vec<_> = events(stream::iter(chunks), 1024).collect().await;
        assert_eq!(
            got,
            vec![
                Ok(ev("message", "1", None)),
                Ok(ev("message", "2", None)),
                Err(SseError::Transport("connection reset".into())),
            ]
        );
        let cut: Vec<Result<&[u8], String>> = vec![Ok(&b"data: 1\n\ndata: 2\n"[..])];
        let got: Vec<_> = events(stream::iter(cut), 1024).collect().await;
        assert_eq!(
            got,
            vec![Ok(ev("message", "1", None)), Err(SseError::Incomplete)]
        );
    }
}
