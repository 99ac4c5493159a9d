//! Text kinds: HTML, Markdown or plain text, all of which must be UTF-8.
//!
//! HTML is recognised by its opening markup (after whitespace and comments), the way browsers
//! sniff it (WHATWG MIME Sniffing, "identifying a resource with an unknown MIME type"), so a
//! Markdown file that embeds an HTML snippet further down stays Markdown. Markdown and text are
//! told apart by structure: headings, fenced code, links, emphasis, tables and quotes score
//! points; bullet lists alone do not, because plain-text résumés use them too.

use super::{MediaType, Rejection};

/// Tags that open an HTML document or fragment, as in the WHATWG sniffing table.
const HTML_OPENERS: &[&str] = &[
    "<!doctype html",
    "<html",
    "<head",
    "<body",
    "<script",
    "<iframe",
    "<h1",
    "<div",
    "<font",
    "<table",
    "<a",
    "<style",
    "<title",
    "<b",
    "<br",
    "<p",
    "<article",
    "<section",
    "<main",
    "<meta",
];

/// Markdown points needed to call a text Markdown.
const MARKDOWN_THRESHOLD: u32 = 3;

pub fn classify(b: &[u8]) -> Result<MediaType, Rejection> {
    if b.starts_with(b"\xff\xfe") || b.starts_with(b"\xfe\xff") {
        return Err(Rejection::Unsupported(
            "This text file is in UTF-16. Save it as UTF-8 and upload it again.".into(),
        ));
    }
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let text = std::str::from_utf8(b).map_err(|_| {
        Rejection::Unsupported(
            "This file is neither a PDF nor a Word document, and it is not UTF-8 text (older \
             Korean text files are often EUC-KR). Save it as UTF-8, PDF or .docx and upload it \
             again."
                .into(),
        )
    })?;
    if is_binary(text) {
        return Err(Rejection::Unsupported(
            "This looks like a binary file of a kind we do not read. Upload a PDF, a Word \
             document (.docx), Markdown, HTML or plain text."
                .into(),
        ));
    }
    if text.trim().is_empty() {
        return Err(Rejection::Malformed("The file has no text in it.".into()));
    }
    let markdown = markdown_score(text) >= MARKDOWN_THRESHOLD;
    match html_opening(text) {
        Some(Opening::Document) => return Ok(MediaType::Html),
        // GitHub-style Markdown often opens with a centred `<p>` or `<h1>`; its structure
        // decides.
        Some(Opening::Fragment) if !markdown => return Ok(MediaType::Html),
        _ => {}
    }
    if markdown {
        Ok(MediaType::Markdown)
    } else {
        Ok(MediaType::Text)
    }
}

/// NUL bytes, or control characters other than tab, newlines and form feed, in more than a
/// trace: valid UTF-8 can still be a binary format.
fn is_binary(text: &str) -> bool {
    let mut controls = 0usize;
    for c in text.chars() {
        if c == '\0' {
            return true;
        }
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c') {
            controls += 1;
        }
    }
    controls > 8 && controls * 100 > text.len()
}

/// How a text opens, if it opens with markup.
#[derive(Debug, PartialEq, Eq)]
enum Opening {
    /// A doctype, `<html>`, `<head>` or `<body>`: a web page.
    Document,
    /// Another tag of the sniffing table: a page or a fragment embedded in Markdown.
    Fragment,
}

const DOCUMENT_OPENERS: &[&str] = &["<!doctype html", "<html", "<head", "<body"];

fn html_opening(text: &str) -> Option<Opening> {
    let mut rest = text.trim_start();
    // Leading comments (a generator's banner) do not decide anything.
    while let Some(after) = rest.strip_prefix("<!--") {
        match after.find("-->") {
            Some(end) => rest = after[end + 3..].trim_start(),
            None => return None,
        }
    }
    if let Some(after) = rest.strip_prefix("<?xml") {
        // XHTML: an XML declaration, then the same markup.
        match after.find("?>") {
            Some(end) => rest = after[end + 2..].trim_start(),
            None => return None,
        }
    }
    let head: String = rest
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let opens = |opener: &&str| {
        head.strip_prefix(*opener)
            .and_then(|after| after.chars().next())
            .is_some_and(|c| c == '>' || c.is_ascii_whitespace())
    };
    if DOCUMENT_OPENERS.iter().any(opens) {
        Some(Opening::Document)
    } else if HTML_OPENERS.iter().any(opens) {
        Some(Opening::Fragment)
    } else {
        None
    }
}

/// Points for Markdown structure; see the module comment.
fn markdown_score(text: &str) -> u32 {
    let mut score = 0u32;
    let mut previous_was_text = false;
    for line in text.lines().take(5000) {
        let t = line.trim_start();
        let hashes = t.bytes().take_while(|&b| b == b'#').count();
        let atx_heading = (1..=6).contains(&hashes) && t[hashes..].starts_with(' ');
        let fence = t.starts_with("```") || t.starts_with("~~~");
        let setext_underline = previous_was_text
            && !t.is_empty()
            && (t.bytes().all(|b| b == b'=') || (t.len() >= 3 && t.bytes().all(|b| b == b'-')));
        let quote = t.starts_with("> ");
        let table_row = t.starts_with('|') && t.trim_end().ends_with('|') && t.len() > 2;
        if atx_heading || fence || setext_underline {
            score += 3;
        } else if quote || table_row {
            score += 1;
        }
        score += links(t) * 2;
        if t.contains("**") || t.contains("__") {
            score += 1;
        }
        previous_was_text = !t.is_empty() && !t.starts_with('-') && !t.starts_with('=');
        if score >= MARKDOWN_THRESHOLD {
            break;
        }
    }
    score
}

/// `[text](target)` occurrences in a line.
fn links(line: &str) -> u32 {
    let mut n = 0;
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find("](") {
            Some(close) if !after[..close].contains('[') && after[close..].contains(')') => {
                n += 1;
                rest = &after[close + 2..];
            }
            _ => rest = after,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    fn kind(s: &str) -> MediaType {
        classify(s.as_bytes()).unwrap()
    }

    #[test]
    fn fixtures_are_what_they_say() {
        assert_eq!(kind(fixtures::MARKDOWN_EN), MediaType::Markdown);
        assert_eq!(kind(fixtures::MARKDOWN_KO), MediaType::Markdown);
        assert_eq!(kind(fixtures::HTML_EN), MediaType::Html);
        assert_eq!(kind(fixtures::TEXT_EN), MediaType::Text);
        assert_eq!(kind(fixtures::TEXT_KO), MediaType::Text);
    }

    #[test]
    fn html_is_judged_by_its_opening_markup() {
        assert_eq!(
            kind("  <!-- generated -->\n<HTML><body>x</body></HTML>"),
            MediaType::Html
        );
        assert_eq!(
            kind("<?xml version=\"1.0\"?>\n<html xmlns=\"x\">"),
            MediaType::Html
        );
        assert_eq!(kind("<p>Hello</p>"), MediaType::Html);
        // `<pre`-like words that merely start with an opener are not HTML.
        assert_eq!(kind("<progress is slow>"), MediaType::Text);
        // A GitHub README that opens with centred markup is still Markdown.
        assert_eq!(
            kind("<p align=\"center\"><img src=\"me.png\"></p>\n\n# Jane Doe\n\n## Skills\n"),
            MediaType::Markdown
        );
        // Markdown with inline HTML further down stays Markdown.
        assert_eq!(
            kind("# Title\n\nSome text <b>bold</b>\n\n## More\n"),
            MediaType::Markdown
        );
    }

    #[test]
    fn bullets_alone_are_plain_text() {
        assert_eq!(
            kind("Skills\n- Rust\n- SQL\n- Kubernetes\n* Go\n1. first\n"),
            MediaType::Text
        );
        assert_eq!(
            kind("Jane Doe\n========\n\nEngineer.\n"),
            MediaType::Markdown
        );
        assert_eq!(
            kind("See [my blog](https://x.dev) and [code](https://github.com/x).\n"),
            MediaType::Markdown
        );
    }

    #[test]
    fn non_utf8_and_binary_are_unsupported() {
        // "이력서" in EUC-KR.
        let euc_kr = b"\xc0\xcc\xb7\xc2\xbc\xad\n";
        assert!(matches!(classify(euc_kr), Err(Rejection::Unsupported(m)) if m.contains("EUC-KR")));
        assert!(matches!(
            classify(b"\xff\xfeh\0i\0"),
            Err(Rejection::Unsupported(_))
        ));
        assert!(matches!(
            classify(b"abc\0def"),
            Err(Rejection::Unsupported(_))
        ));
        assert!(matches!(classify(b"  \n\t "), Err(Rejection::Malformed(_))));
        assert_eq!(classify(b"\xef\xbb\xbfhello").unwrap(), MediaType::Text);
    }
}
