//! Reading a `multipart/form-data` upload: a `file` part (required) and a `title` part
//! (optional), with a hard cap on the file's bytes. The declared content type of the part is
//! ignored: what the file is gets decided by its bytes (`sniff`).

use axum::extract::Multipart;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use bytes::{Bytes, BytesMut};
use kernel::Problem;

/// A title is a line of text, not a document.
const MAX_TITLE_CHARS: usize = 200;
const MAX_TITLE_BYTES: usize = 4 * 1024;
const MAX_FILENAME_CHARS: usize = 255;

#[derive(Debug)]
pub struct Upload {
    pub bytes: Bytes,
    /// The base name the client sent, for display only.
    pub filename: Option<String>,
    pub title: Option<String>,
}

fn too_large(max: u64) -> Problem {
    Problem::PayloadTooLarge(format!(
        "The file is larger than {}, the most a document may be.",
        human_size(max)
    ))
}

fn multipart_problem(e: MultipartError, max: u64) -> Problem {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        Problem::invalid(format!(
            "The upload is not a valid multipart/form-data body: {}.",
            e.body_text()
        ))
    }
}

pub fn rejection_problem(r: MultipartRejection) -> Problem {
    Problem::UnsupportedMediaType(format!(
        "Send the document as multipart/form-data with the file in a part named `file` ({}).",
        r.body_text()
    ))
}

pub async fn read(mut form: Multipart, max: u64) -> Result<Upload, Problem> {
    let mut file: Option<(Bytes, Option<String>)> = None;
    let mut title = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| multipart_problem(e, max))?
    {
        match field.name() {
            Some("file") if file.is_none() => {
                let filename = field.file_name().and_then(base_name);
                let mut buf = BytesMut::new();
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| multipart_problem(e, max))?
                {
                    if (buf.len() + chunk.len()) as u64 > max {
                        return Err(too_large(max));
                    }
                    buf.extend_from_slice(&chunk);
                }
                file = Some((buf.freeze(), filename));
            }
            Some("file") => {
                return Err(Problem::invalid("Upload one file at a time."));
            }
            Some("title") => {
                let mut buf = Vec::new();
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| multipart_problem(e, max))?
                {
                    if buf.len() + chunk.len() > MAX_TITLE_BYTES {
                        return Err(Problem::invalid_fields(vec![kernel::FieldError::new(
                            "title",
                            format!("must have at most {MAX_TITLE_CHARS} characters"),
                        )]));
                    }
                    buf.extend_from_slice(&chunk);
                }
                title = Some(parse_title(&buf)?);
            }
            // Other parts (a client's extra metadata) are skipped, within the body limit.
            _ => {}
        }
    }
    let (bytes, filename) = file.ok_or_else(|| {
        Problem::invalid_fields(vec![kernel::FieldError::new(
            "file",
            "is required: send the document in a part named `file`",
        )])
    })?;
    Ok(Upload {
        bytes,
        filename,
        title: title.flatten(),
    })
}

/// An empty title means "derive it from the file name".
fn parse_title(raw: &[u8]) -> Result<Option<String>, Problem> {
    let invalid =
        |m: &str| Problem::invalid_fields(vec![kernel::FieldError::new("title", m.to_owned())]);
    let s = std::str::from_utf8(raw).map_err(|_| invalid("must be UTF-8 text"))?;
    let s = s.trim();
    if s.chars().any(char::is_control) {
        return Err(invalid("must be one line of text"));
    }
    if s.chars().count() > MAX_TITLE_CHARS {
        return Err(invalid(&format!(
            "must have at most {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// The last path segment of a client's file name, without control characters, bounded.
pub fn base_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    let clean = clean.trim().to_owned();
    (!clean.is_empty() && clean != "." && clean != "..").then_some(clean)
}

/// The title shown when the client gave none: the file name without its extension.
pub fn default_title(filename: Option<&str>) -> String {
    let Some(name) = filename else {
        return "Untitled document".into();
    };
    let stem = match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    };
    let stem = stem.trim();
    if stem.is_empty() {
        "Untitled document".into()
    } else {
        stem.chars().take(MAX_TITLE_CHARS).collect()
    }
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_their_base() {
        assert_eq!(
            base_name("C:\\Users\\me\\cv.pdf").as_deref(),
            Some("cv.pdf")
        );
        assert_eq!(base_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(base_name("이력서\u{0}.md").as_deref(), Some("이력서.md"));
        assert_eq!(base_name("dir/"), None);
        assert_eq!(base_name(".."), None);
    }

    #[test]
    fn titles_default_to_the_stem() {
        assert_eq!(default_title(Some("김민준 이력서.pdf")), "김민준 이력서");
        assert_eq!(default_title(Some(".profile")), ".profile");
        assert_eq!(default_title(None), "Untitled document");
        assert_eq!(parse_title(b"  My CV ").unwrap().as_deref(), Some("My CV"));
        assert_eq!(parse_title(b"   ").unwrap(), None);
        assert!(parse_title(b"a\nb").is_err());
        assert!(parse_title("x".repeat(201).as_bytes()).is_err());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(20 * 1024 * 1024), "20 MiB");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
