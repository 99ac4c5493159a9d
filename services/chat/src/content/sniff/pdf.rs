//! PDF: the header, a complete trailer, no encryption, and some font to show text with.
//!
//! References are to ISO 32000-1: the header (7.5.2), the end of file marker and `startxref`
//! (7.5.5), cross-reference tables and streams (7.5.4, 7.5.8), the encryption dictionary named
//! by the trailer's `/Encrypt` (7.6.1), object streams (7.5.7), and text-showing operators,
//! which need a font selected by `Tf` from the page's `/Font` resources (9.2, 9.4).

use super::{Limits, Rejection, find, rfind};
use std::io::Read;

const HEADER: &[u8] = b"%PDF-";
/// Readers accept the header within the first 1024 bytes, after junk some tools prepend.
const HEADER_WINDOW: usize = 1024;
/// `%%EOF` must be within the last 1024 bytes (Acrobat's tolerance, as other readers).
const TAIL_WINDOW: usize = 1024;

pub fn is_pdf(b: &[u8]) -> bool {
    find(&b[..b.len().min(HEADER_WINDOW)], HEADER).is_some()
}

pub fn check(b: &[u8], limits: &Limits) -> Result<(), Rejection> {
    let tail = &b[b.len().saturating_sub(TAIL_WINDOW)..];
    if find(tail, b"%%EOF").is_none() {
        return Err(Rejection::Malformed(
            "This PDF is incomplete: it does not end the way a PDF must (%%EOF), so the upload \
             was probably cut off. Try exporting or downloading it again."
                .into(),
        ));
    }
    check_xref(b, tail)?;
    if is_encrypted(b) {
        return Err(Rejection::Encrypted(
            "This PDF is protected with a password or encryption, so its text cannot be read. \
             Remove the protection (for example, print it to a new PDF) and upload it again."
                .into(),
        ));
    }
    if !has_fonts(b, limits.pdf_max_inflated_bytes) {
        return Err(Rejection::NoText(
            "This PDF has no text layer: its pages look like scanned images. Upload the original \
             document, or run text recognition (OCR) on it first."
                .into(),
        ));
    }
    Ok(())
}

/// The last `startxref` must point inside the file at a table (`xref`) or a cross-reference
/// stream (`N G obj`).
fn check_xref(b: &[u8], tail: &[u8]) -> Result<(), Rejection> {
    let broken = || {
        Rejection::Malformed(
            "This PDF is damaged: its cross-reference table is missing or points outside the \
             file. Try exporting or downloading it again."
                .into(),
        )
    };
    let at = rfind(tail, b"startxref").ok_or_else(broken)?;
    let digits: Vec<u8> = tail[at + b"startxref".len()..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .take(20)
        .collect();
    let offset: usize = std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(broken)?;
    let target = b.get(offset..).ok_or_else(broken)?;
    let target = &target[..target.len().min(64)];
    let start = target
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(target.len());
    let target = &target[start..];
    if target.starts_with(b"xref") || starts_with_object_header(target) {
        Ok(())
    } else {
        Err(broken())
    }
}

/// `12 0 obj`
fn starts_with_object_header(b: &[u8]) -> bool {
    let mut i = 0;
    for _ in 0..2 {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += digits;
        let spaces = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
        if spaces == 0 {
            return false;
        }
        i += spaces;
    }
    b[i..].starts_with(b"obj")
}

/// The trailer (or the cross-reference stream's dictionary, which PDF 1.5 uses instead) names
/// an encryption dictionary. Both are plain text, never inside a compressed stream.
fn is_encrypted(b: &[u8]) -> bool {
    let mut rest = b;
    while let Some(at) = find(rest, b"/Encrypt") {
        // `/EncryptMetadata` is a key inside an encryption dictionary, not a reference to one.
        let after = rest.get(at + b"/Encrypt".len()).copied();
        if after.is_none_or(|c| c.is_ascii_whitespace() || c == b'<' || c.is_ascii_digit()) {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// Whether any font dictionary exists, in the plain bytes or inside a compressed (object)
/// stream. Without a font no text-showing operator can draw a glyph, which is the mark of a
/// scanned document. Image streams are skipped; at most `budget` bytes are inflated in all.
fn has_fonts(b: &[u8], budget: u64) -> bool {
    if find(b, b"/Font").is_some() {
        return true;
    }
    let mut remaining = budget;
    let mut pos = 0;
    while let Some(rel) = find(&b[pos..], b"stream") {
        let keyword = pos + rel;
        pos = keyword + b"stream".len();
        // `endstream` also contains `stream`.
        if keyword >= 3 && &b[keyword - 3..keyword] == b"end" {
            continue;
        }
        let dict_start = keyword.saturating_sub(4096);
        let dict = &b[dict_start..keyword];
        let dict = match rfind(dict, b"obj") {
            Some(i) => &dict[i..],
            None => dict,
        };
        let is_image =
            find(dict, b"/Subtype /Image").is_some() || find(dict, b"/Subtype/Image").is_some();
        if find(dict, b"/FlateDecode").is_none() || is_image {
            continue;
        }
        let mut data_start = pos;
        if b.get(data_start) == Some(&b'\r') {
            data_start += 1;
        }
        if b.get(data_start) == Some(&b'\n') {
            data_start += 1;
        }
        let Some(data) = b.get(data_start..) else {
            break;
        };
        let end = find(data, b"endstream").unwrap_or(data.len());
        let mut inflated = Vec::new();
        let reader = flate2::read::ZlibDecoder::new(&data[..end]);
        // A damaged stream yields what it can; the ai service judges the rest.
        let _ = reader.take(remaining).read_to_end(&mut inflated);
        remaining = remaining.saturating_sub(inflated.len() as u64);
        if find(&inflated, b"/Font").is_some() {
            return true;
        }
        if remaining == 0 {
            // Too much to inspect cheaply: let ingestion decide rather than refuse a document
            // that may well have text.
            return true;
        }
        pos = data_start + end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    fn judge(b: &[u8]) -> Result<(), Rejection> {
        assert!(is_pdf(b));
        check(b, &Limits::default())
    }

    #[test]
    fn real_pdfs_with_text_pass() {
        judge(&fixtures::pdf_with_text(&["Jane Doe", "Rust (and more)"])).unwrap();
        judge(&fixtures::pdf_with_compressed_text("Jane Doe")).unwrap();
    }

    #[test]
    fn scanned_pages_are_refused_with_a_reason() {
        let err = judge(&fixtures::pdf_image_only()).unwrap_err();
        assert!(
            matches!(&err, Rejection::NoText(m) if m.contains("scanned")),
            "{err:?}"
        );
    }

    #[test]
    fn encrypted_pdfs_are_refused() {
        let err = judge(&fixtures::pdf_encrypted()).unwrap_err();
        assert!(matches!(err, Rejection::Encrypted(_)), "{err:?}");
    }

    #[test]
    fn truncated_pdfs_are_malformed() {
        let pdf = fixtures::pdf_with_text(&["Jane Doe"]);
        for cut in [pdf.len() - 7, pdf.len() / 2, 20] {
            let err = judge(&pdf[..cut]).unwrap_err();
            assert!(matches!(err, Rejection::Malformed(_)), "cut {cut}: {err:?}");
        }
    }

    #[test]
    fn a_startxref_pointing_nowhere_is_malformed() {
        let mut pdf = fixtures::pdf_with_text(&["Jane Doe"]);
        let at = rfind(&pdf, b"startxref\n").unwrap() + b"startxref\n".len();
        pdf[at] = b'9';
        pdf[at + 1] = b'9';
        let err = judge(&pdf).unwrap_err();
        assert!(matches!(err, Rejection::Malformed(_)), "{err:?}");
        let no_xref = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n";
        assert!(matches!(judge(no_xref), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn encrypt_metadata_alone_is_not_encryption() {
        assert!(!is_encrypted(b"<< /EncryptMetadata false >>"));
        assert!(is_encrypted(b"trailer << /Encrypt 6 0 R >>"));
        assert!(is_encrypted(
            b"trailer << /Encrypt<< /Filter /Standard >> >>"
        ));
    }

    #[test]
    fn object_headers() {
        assert!(starts_with_object_header(b"12 0 obj\n<<"));
        assert!(!starts_with_object_header(b"12 obj"));
        assert!(!starts_with_object_header(b"x"));
        assert!(!starts_with_object_header(b""));
    }
}
