//! What an uploaded file is, decided by its bytes alone (the name and the declared type are a
//! client's claim, and a mislabelled file must be judged by what it is).
//!
//! Sans-io: the checks take the whole upload as a slice and return an outcome; no file system,
//! no clock. They are cheap structural checks (header, trailer, archive directory, UTF-8), not
//! extraction: the ai service extracts the text and reports a failure of its own if a file
//! passes here and still yields nothing. Nothing here panics on any input (see the prefix tests).

mod docx;
mod pdf;
mod text;

use kernel::events::content::media_type;

/// The five kinds of document we accept; their names are those of the `content.uploaded` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    Docx,
    Markdown,
    Html,
    Text,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => media_type::PDF,
            Self::Docx => media_type::DOCX,
            Self::Markdown => media_type::MARKDOWN,
            Self::Html => media_type::HTML,
            Self::Text => media_type::TEXT,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pdf,
            Self::Docx,
            Self::Markdown,
            Self::Html,
            Self::Text,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// For the object store: text types say their charset, which we checked.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf | Self::Docx => self.as_str(),
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Text => "text/plain; charset=utf-8",
        }
    }
}

/// Bounds on the work and memory one upload may cost while it is checked.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes a DOCX may expand to (a zip bomb expands without bound).
    pub docx_max_expanded_bytes: u64,
    /// Entries a DOCX archive may hold.
    pub docx_max_entries: usize,
    /// Bytes of compressed PDF streams inflated while looking for fonts.
    pub pdf_max_inflated_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            docx_max_expanded_bytes: 100 * 1024 * 1024,
            docx_max_entries: 2000,
            pdf_max_inflated_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why an upload is refused. Each message is written for the person who uploaded the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not one of the five kinds (an image, a spreadsheet, a non-UTF-8 text...): 415.
    #[error("{0}")]
    Unsupported(String),
    /// One of the kinds, but broken or cut off: 400.
    #[error("{0}")]
    Malformed(String),
    /// Protected by a password, so nobody but its owner can read it: 400.
    #[error("{0}")]
    Encrypted(String),
    /// A PDF of scanned pages with no text layer: 400.
    #[error("{0}")]
    NoText(String),
    /// Expands beyond the limits (a zip bomb, or simply far too much): 413.
    #[error("{0}")]
    TooLarge(String),
}

impl Rejection {
    /// The reason as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "unsupported",
            Self::Malformed(_) => "malformed",
            Self::Encrypted(_) => "encrypted",
            Self::NoText(_) => "no-text",
            Self::TooLarge(_) => "too-large",
        }
    }
}

/// Decides what `bytes` is, or why it cannot be taken.
pub fn sniff(bytes: &[u8], limits: &Limits) -> Result<MediaType, Rejection> {
    if bytes.is_empty() {
        return Err(Rejection::Malformed("The file is empty.".into()));
    }
    if pdf::is_pdf(bytes) {
        pdf::check(bytes, limits)?;
        return Ok(MediaType::Pdf);
    }
    if docx::is_zip(bytes) {
        docx::check(bytes, limits)?;
        return Ok(MediaType::Docx);
    }
    if let Some(name) = known_binary(bytes) {
        return Err(Rejection::Unsupported(format!(
            "This is {name}, which is not supported. Upload a PDF, a Word document (.docx), \
             Markdown, HTML or plain text."
        )));
    }
    text::classify(bytes)
}

/// Formats people try to upload that we recognise only to name them in the refusal.
fn known_binary(b: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF87a", "a GIF image"),
        (b"GIF89a", "a GIF image"),
        (b"II*\0", "a TIFF image"),
        (b"MM\0*", "a TIFF image"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "an old-format Office or HWP file (or a password-protected Word document); \
             save it as .docx or PDF without a password",
        ),
        (b"{\\rtf", "an RTF document; save it as .docx or PDF"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!\x1a\x07", "a RAR archive"),
        (b"\x7fELF", "a program"),
        (b"MZ", "a program"),
    ];
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some("a WebP image");
    }
    MAGIC
        .iter()
        .find(|(magic, _)| b.starts_with(magic))
        .map(|(_, name)| *name)
}

/// Finds `needle` in `hay`; the inputs here are at most a few tens of MiB.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_round_trip() {
        for m in [
            MediaType::Pdf,
            MediaType::Docx,
            MediaType::Markdown,
            MediaType::Html,
            MediaType::Text,
        ] {
            assert_eq!(MediaType::parse(m.as_str()), Some(m));
            assert!(media_type::ALL.contains(&m.as_str()));
        }
    }

    #[test]
    fn images_and_archives_are_named() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        match sniff(png, &Limits::default()) {
            Err(Rejection::Unsupported(m)) => assert!(m.contains("PNG"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sniff(b"\x1f\x8b\x08\0", &Limits::default()),
            Err(Rejection::Unsupported(_))
        ));
        assert!(matches!(
            sniff(b"{\\rtf1\\ansi hello}", &Limits::default()),
            Err(Rejection::Unsupported(_))
        ));
    }

    #[test]
    fn empty_is_malformed() {
        assert!(matches!(
            sniff(b"", &Limits::default()),
            Err(Rejection::Malformed(_))
        ));
    }

    /// Damaged copies of every fixture (bytes flipped, cut, repeated) are judged, never panic:
    /// whatever a client sends ends as an outcome. Deterministic, so a failure reproduces.
    #[test]
    fn damaged_fixtures_are_judged_without_panic() {
        let limits = Limits::default();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (_, original) in fixtures::all() {
            for _ in 0..300 {
                let mut b = original.clone();
                for _ in 0..(next() % 8 + 1) {
                    let at = (next() as usize) % b.len();
                    match next() % 3 {
                        0 => b[at] ^= 1 << (next() % 8),
                        1 => b[at] = next() as u8,
                        _ => {
                            let end = (at + (next() as usize) % 64).min(b.len());
                            let copy = b[at..end].to_vec();
                            b.splice(at..at, copy);
                        }
                    }
                }
                let _ = sniff(&b, &limits);
            }
        }
    }

    #[test]
    fn every_prefix_of_every_fixture_is_judged_without_panic() {
        let limits = Limits::default();
        for (name, bytes) in fixtures::all() {
            for n in 0..=bytes.len() {
                let _ = sniff(&bytes[..n], &limits);
            }
            assert!(sniff(&bytes, &limits).is_ok(), "{name}");
        }
    }
}
