//! DOCX: an Office Open XML package (ECMA-376 part 2), which is a ZIP archive whose
//! `[Content_Types].xml` declares the WordprocessingML main document part, `word/document.xml`.
//!
//! The archive is read in full before it is accepted: every entry is inflated against one byte
//! budget (so a zip bomb stops at the budget, whatever sizes its headers claim) and checked
//! against its CRC (so a damaged or truncated archive is refused here, not at ingestion).

use super::{Limits, Rejection, find};
use std::io::{Cursor, Read};

/// Local file header, or the end-of-central-directory record of an empty archive.
pub fn is_zip(b: &[u8]) -> bool {
    b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06")
}

const MAIN_PART: &[u8] =
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml";
const MACRO_PART: &[u8] = b"application/vnd.ms-word.document.macroEnabled.main+xml";
const TEMPLATE_PART: &[u8] =
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml";
/// `[Content_Types].xml` is a short list; a huge one is not a real package.
const MAX_CONTENT_TYPES: u64 = 1024 * 1024;

fn damaged(detail: impl std::fmt::Display) -> Rejection {
    Rejection::Malformed(format!(
        "This file is a damaged or incomplete ZIP archive (a Word .docx file is one): {detail}. \
         Try saving or downloading it again."
    ))
}

fn password_protected() -> Rejection {
    Rejection::Encrypted(
        "This Word document is protected with a password. Remove the password and upload it \
         again."
            .into(),
    )
}

pub fn check(b: &[u8], limits: &Limits) -> Result<(), Rejection> {
    let mut zip = zip::ZipArchive::new(Cursor::new(b)).map_err(damaged)?;
    if zip.len() > limits.docx_max_entries {
        return Err(Rejection::TooLarge(format!(
            "This archive holds {} files; a Word document has far fewer (at most {} are accepted).",
            zip.len(),
            limits.docx_max_entries
        )));
    }
    let too_large = || {
        Rejection::TooLarge(format!(
            "This document expands to more than {} MiB when unpacked, more than a résumé or \
             career document needs (it may be a zip bomb).",
            limits.docx_max_expanded_bytes / (1024 * 1024)
        ))
    };
    // The central directory's claims first: cheap, and enough for an honest archive.
    let mut claimed: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(damaged)?;
        if entry.encrypted() {
            return Err(password_protected());
        }
        claimed = claimed.saturating_add(entry.size());
    }
    if claimed > limits.docx_max_expanded_bytes {
        return Err(too_large());
    }

    let content_types = read_named(&mut zip, "[Content_Types].xml", MAX_CONTENT_TYPES)?;
    let has = |name: &str| zip.index_for_name(name).is_some();
    match content_types {
        Some(ct) if find(&ct, MAIN_PART).is_some() && has("word/document.xml") => {}
        Some(ct) if find(&ct, MACRO_PART).is_some() => {
            return Err(Rejection::Unsupported(
                "This is a macro-enabled Word document (.docm). Save it as a plain .docx and \
                 upload that."
                    .into(),
            ));
        }
        Some(ct) if find(&ct, TEMPLATE_PART).is_some() => {
            return Err(Rejection::Unsupported(
                "This is a Word template (.dotx). Save it as a .docx document and upload that."
                    .into(),
            ));
        }
        _ => return Err(Rejection::Unsupported(other_zip(&zip))),
    }

    // Then what it really expands to, against the budget, with every CRC checked.
    let mut budget = limits.docx_max_expanded_bytes;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(damaged)?;
        if entry.is_dir() {
            continue;
        }
        let read =
            std::io::copy(&mut entry.take(budget + 1), &mut std::io::sink()).map_err(damaged)?;
        if read > budget {
            return Err(too_large());
        }
        budget -= read;
    }
    Ok(())
}

/// The entry `name` in full, if present and at most `max` bytes.
fn read_named(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, Rejection> {
    let Some(i) = zip.index_for_name(name) else {
        return Ok(None);
    };
    let entry = zip.by_index(i).map_err(damaged)?;
    let mut out = Vec::new();
    entry.take(max).read_to_end(&mut out).map_err(damaged)?;
    Ok(Some(out))
}

/// Names the ZIP-based formats people confuse with Word documents.
fn other_zip(zip: &zip::ZipArchive<Cursor<&[u8]>>) -> String {
    let has = |name: &str| zip.index_for_name(name).is_some();
    let what = if has("xl/workbook.xml") {
        "an Excel spreadsheet (.xlsx)"
    } else if has("ppt/presentation.xml") {
        "a PowerPoint presentation (.pptx)"
    } else if has("Contents/content.hpf") || has("Contents/section0.xml") {
        "a Hangul document (.hwpx); save it as .docx or PDF"
    } else if has("content.xml") && has("mimetype") {
        "an OpenDocument file; save it as .docx or PDF"
    } else {
        "a ZIP archive that is not a Word document"
    };
    format!(
        "This is {what}, which is not supported. Upload a PDF, a Word document (.docx), \
         Markdown, HTML or plain text."
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    fn judge(b: &[u8], limits: &Limits) -> Result<(), Rejection> {
        assert!(is_zip(b));
        check(b, limits)
    }

    #[test]
    fn real_docx_passes() {
        judge(
            &fixtures::docx("김민준", &["백엔드 개발자", "Rust"]),
            &Limits::default(),
        )
        .unwrap();
    }

    #[test]
    fn a_zip_bomb_stops_at_the_budget() {
        let bomb = fixtures::docx_bomb(8 * 1024 * 1024);
        assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
        let limits = Limits {
            docx_max_expanded_bytes: 4 * 1024 * 1024,
            ..Limits::default()
        };
        let err = judge(&bomb, &limits).unwrap_err();
        assert!(
            matches!(&err, Rejection::TooLarge(m) if m.contains("zip bomb")),
            "{err:?}"
        );
    }

    #[test]
    fn a_bomb_that_lies_about_its_size_is_still_stopped() {
        // Rewrite every size field that claims the padding's 8 MiB to claim 100 bytes.
        let mut bomb = fixtures::docx_bomb(8 * 1024 * 1024);
        let real = (8u32 * 1024 * 1024).to_le_bytes();
        let mut i = 0;
        while i + 4 <= bomb.len() {
            if bomb[i..i + 4] == real {
                bomb[i..i + 4].copy_from_slice(&100u32.to_le_bytes());
            }
            i += 1;
        }
        let limits = Limits {
            docx_max_expanded_bytes: 4 * 1024 * 1024,
            ..Limits::default()
        };
        assert!(judge(&bomb, &limits).is_err());
    }

    #[test]
    fn too_many_entries_are_refused() {
        let names: Vec<String> = (0..50).map(|i| format!("word/media/{i}.xml")).collect();
        let mut entries: Vec<(&str, &[u8])> =
            names.iter().map(|n| (n.as_str(), &b"<x/>"[..])).collect();
        let doc = fixtures::docx("a", &["b"]);
        entries.push(("extra", &doc));
        let limits = Limits {
            docx_max_entries: 20,
            ..Limits::default()
        };
        let err = judge(&fixtures::zip_of(&entries), &limits).unwrap_err();
        assert!(matches!(err, Rejection::TooLarge(_)), "{err:?}");
    }

    #[test]
    fn password_protected_entries_are_refused_as_encrypted() {
        // Set the "encrypted" flag (general purpose bit 0) on every entry, as ZipCrypto does.
        let mut doc = fixtures::docx("Jane", &["Doe"]);
        for (sig, flags_at) in [(&b"PK\x03\x04"[..], 6), (&b"PK\x01\x02"[..], 8)] {
            let mut i = 0;
            while let Some(at) = find(&doc[i..], sig) {
                doc[i + at + flags_at] |= 1;
                i += at + 4;
            }
        }
        let err = judge(&doc, &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, Rejection::Encrypted(m) if m.contains("password")),
            "{err:?}"
        );
    }

    #[test]
    fn other_zips_are_unsupported_and_named() {
        let err = judge(&fixtures::plain_zip(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, Rejection::Unsupported(m) if m.contains("ZIP")),
            "{err:?}"
        );
        let xlsx = fixtures::zip_of(&[("xl/workbook.xml", b"<workbook/>")]);
        let err = judge(&xlsx, &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, Rejection::Unsupported(m) if m.contains("Excel")),
            "{err:?}"
        );
    }

    #[test]
    fn damaged_archives_are_malformed() {
        let doc = fixtures::docx("Jane", &["Doe"]);
        let err = judge(&doc[..doc.len() / 2], &Limits::default()).unwrap_err();
        assert!(matches!(err, Rejection::Malformed(_)), "{err:?}");
        // Flip bytes inside the compressed document part: the CRC (or inflate) catches it.
        let mut flipped = doc.clone();
        let at = find(&flipped, b"word/document.xml").unwrap() + 40;
        for b in &mut flipped[at..at + 16] {
            *b ^= 0x5a;
        }
        assert!(judge(&flipped, &Limits::default()).is_err());
    }
}
