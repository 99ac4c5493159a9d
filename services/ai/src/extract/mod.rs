//! Text with its structure out of an original: a flat list of blocks (paragraphs, list items,
//! table rows), each knowing its heading path and page, so that chunks can cite where they come
//! from. One module per format; the media type comes from chat's content sniffing.

mod docx;
mod html;
mod markdown;
mod pdf;

use kernel::events::content::media_type;

/// What a block is; chunking keeps list items and table rows whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Paragraph,
    ListItem,
    TableRow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: Kind,
    pub text: String,
    /// Headings above the block, outermost first.
    pub headings: Vec<String>,
    /// 1-based page, for formats that have pages.
    pub page: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// A title found in the document itself (HTML `<title>`, the first top heading).
    pub title: Option<String>,
    pub blocks: Vec<Block>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("unsupported media type `{0}`")]
    Unsupported(String),
    #[error("the PDF is encrypted")]
    Encrypted,
    #[error("the PDF cannot be read: {0}")]
    Pdf(String),
    #[error("the DOCX cannot be read: {0}")]
    Docx(String),
    #[error("the text is not UTF-8")]
    NotUtf8,
    #[error("no text was found in the document (an image-only scan?)")]
    Empty,
}

/// Extracts the blocks of an original of `media`.
pub fn extract(media: &str, bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let out = match media {
        media_type::PDF => pdf::extract(bytes)?,
        media_type::DOCX => docx::extract(bytes)?,
        media_type::HTML => html::extract(&utf8(bytes)?),
        media_type::MARKDOWN => markdown::extract(&utf8(bytes)?),
        media_type::TEXT => plain(&utf8(bytes)?),
        other => return Err(ExtractError::Unsupported(other.to_owned())),
    };
    if out.blocks.iter().all(|b| b.text.trim().is_empty()) {
        return Err(ExtractError::Empty);
    }
    Ok(out)
}

fn utf8(bytes: &[u8]) -> Result<String, ExtractError> {
    let s = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
    Ok(s.trim_start_matches('\u{feff}').to_owned())
}

/// Plain text: paragraphs are separated by blank lines; lines starting with a bullet are items.
fn plain(text: &str) -> Extracted {
    let mut b = Builder::default();
    for para in split_paragraphs(text) {
        b.paragraph_or_item(&para);
    }
    b.finish()
}

/// Paragraphs separated by blank lines, their lines joined with spaces.
pub(crate) fn split_paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(cur.join("\n"));
                cur.clear();
            }
        } else {
            cur.push(line);
        }
    }
    if !cur.is_empty() {
        out.push(cur.join("\n"));
    }
    out
}

/// Collects blocks while tracking the heading stack and the current page.
#[derive(Default)]
pub(crate) struct Builder {
    stack: Vec<(u8, String)>,
    page: Option<u32>,
    title: Option<String>,
    blocks: Vec<Block>,
}

impl Builder {
    pub fn heading(&mut self, level: u8, text: &str) {
        let text = collapse(text);
        if text.is_empty() {
            return;
        }
        if self.title.is_none() && level <= 1 {
            self.title = Some(text.clone());
        }
        while self.stack.last().is_some_and(|(l, _)| *l >= level) {
            self.stack.pop();
        }
        self.stack.push((level, text));
    }

    pub fn title(&mut self, text: &str) {
        let t = collapse(text);
        if !t.is_empty() {
            self.title = Some(t);
        }
    }

    pub fn page(&mut self, page: u32) {
        self.page = Some(page);
    }

    pub fn block(&mut self, kind: Kind, text: &str) {
        let text = collapse(text);
        if text.is_empty() {
            return;
        }
        self.blocks.push(Block {
            kind,
            text,
            headings: self.stack.iter().map(|(_, h)| h.clone()).collect(),
            page: self.page,
        });
    }

    /// A paragraph of plain lines: lines starting with a bullet become list items.
    pub fn paragraph_or_item(&mut self, para: &str) {
        let bulleted = para.lines().all(|l| bullet(l).is_some());
        if bulleted {
            for l in para.lines() {
                self.block(Kind::ListItem, bullet(l).unwrap_or(l));
            }
        } else {
            self.block(Kind::Paragraph, para);
        }
    }

    pub fn finish(self) -> Extracted {
        Extracted {
            title: self.title,
            blocks: self.blocks,
        }
    }
}

fn bullet(line: &str) -> Option<&str> {
    let l = line.trim_start();
    ["- ", "* ", "• ", "· ", "– "]
        .iter()
        .find_map(|b| l.strip_prefix(b))
}

/// Whitespace runs become one space (newlines too: blocks are single lines of prose).
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_paragraphs_and_bullets() {
        let e = extract(
            media_type::TEXT,
            "\u{feff}첫 문단입니다.\n이어지는 줄.\n\n- 하나\n- 둘\n\nLast one.".as_bytes(),
        )
        .unwrap();
        let texts: Vec<_> = e.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                (Kind::Paragraph, "첫 문단입니다. 이어지는 줄."),
                (Kind::ListItem, "하나"),
                (Kind::ListItem, "둘"),
                (Kind::Paragraph, "Last one."),
            ]
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(
            extract("image/png", b"x"),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            extract(media_type::TEXT, b"\xff\xfe"),
            Err(ExtractError::NotUtf8)
        ));
        assert!(matches!(
            extract(media_type::TEXT, b"  \n\n "),
            Err(ExtractError::Empty)
        ));
    }

    #[test]
    fn heading_stack_pops_to_the_right_level() {
        let mut b = Builder::default();
        b.heading(1, "CV");
        b.heading(2, "Experience");
        b.heading(3, "Acme");
        b.block(Kind::Paragraph, "a");
        b.heading(2, "Education");
        b.block(Kind::Paragraph, "b");
        let e = b.finish();
        assert_eq!(e.title.as_deref(), Some("CV"));
        assert_eq!(e.blocks[0].headings, ["CV", "Experience", "Acme"]);
        assert_eq!(e.blocks[1].headings, ["CV", "Education"]);
    }
}
