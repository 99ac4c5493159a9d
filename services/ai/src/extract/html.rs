//! HTML: the main content only. `<main>` (or `<article>`, else `<body>`) is walked, and
//! navigation, headers, footers, asides, scripts, styles and forms are dropped with everything
//! inside them, so site boilerplate never becomes a chunk.

use super::{Builder, Extracted, Kind, markdown::table_row};
use scraper::{ElementRef, Html, Node, Selector};

const SKIPPED: [&str; 12] = [
    "nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template",
    "iframe", "svg", "button",
];
const BLOCKS: [&str; 7] = [
    "p",
    "pre",
    "blockquote",
    "dd",
    "dt",
    "figcaption",
    "address",
];

pub fn extract(text: &str) -> Extracted {
    let doc = Html::parse_document(text);
    let mut b = Builder::default();
    let root = ["main", "article", "[role=main]", "body"]
        .iter()
        .filter_map(|s| Selector::parse(s).ok())
        .find_map(|s| doc.select(&s).next());
    if let Some(root) = root {
        walk(root, &mut b);
    }
    if let Some(t) = Selector::parse("head > title")
        .ok()
        .and_then(|s| doc.select(&s).next())
    {
        b.title(&t.text().collect::<String>());
    }
    b.finish()
}

fn skipped(e: &ElementRef) -> bool {
    let v = e.value();
    SKIPPED.contains(&v.name())
        || matches!(
            v.attr("role"),
            Some("navigation" | "banner" | "contentinfo" | "complementary")
        )
        || v.attr("hidden").is_some()
        || v.attr("aria-hidden") == Some("true")
}

/// Walks an element: headings and block elements become blocks; loose text directly inside a
/// container (a `<div>` with text) becomes a paragraph of its own.
fn walk(el: ElementRef, b: &mut Builder) {
    let mut loose = String::new();
    for child in el.children() {
        match child.value() {
            Node::Text(t) => loose.push_str(t),
            Node::Element(_) => {
                let Some(c) = ElementRef::wrap(child) else {
                    continue;
                };
                if skipped(&c) {
                    continue;
                }
                let name = c.value().name();
                if is_inline(name) {
                    loose.push_str(&inline_text(c));
                    continue;
                }
                b.block(Kind::Paragraph, &std::mem::take(&mut loose));
                match name {
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        let level = name[1..].parse().unwrap_or(6);
                        b.heading(level, &inline_text(c));
                    }
                    "li" => item(c, b),
                    "table" => table(c, b),
                    n if BLOCKS.contains(&n) => b.block(Kind::Paragraph, &inline_text(c)),
                    _ => walk(c, b),
                }
            }
            _ => {}
        }
    }
    b.block(Kind::Paragraph, &loose);
}

/// A list item's own text is one block; a nested list inside it gives its own items.
fn item(li: ElementRef, b: &mut Builder) {
    let mut own = String::new();
    let mut nested = Vec::new();
    for child in li.children() {
        match child.value() {
            Node::Text(t) => own.push_str(t),
            Node::Element(e) if matches!(e.name(), "ul" | "ol") => nested.push(child),
            Node::Element(_) => {
                if let Some(c) = ElementRef::wrap(child).filter(|c| !skipped(c)) {
                    own.push(' ');
                    own.push_str(&inline_text(c));
                }
            }
            _ => {}
        }
    }
    b.block(Kind::ListItem, &own);
    for n in nested.into_iter().filter_map(ElementRef::wrap) {
        walk(n, b);
    }
}

fn table(t: ElementRef, b: &mut Builder) {
    let (Ok(tr), Ok(cell)) = (Selector::parse("tr"), Selector::parse("th, td")) else {
        return;
    };
    let mut head: Vec<String> = Vec::new();
    for (i, row) in t.select(&tr).enumerate() {
        let cells: Vec<String> = row.select(&cell).map(inline_text).collect();
        let all_th = row.select(&cell).all(|c| c.value().name() == "th");
        if i == 0 && all_th {
            head = cells;
            continue;
        }
        b.block(Kind::TableRow, &table_row(&head, &cells));
    }
}

fn is_inline(name: &str) -> bool {
    matches!(
        name,
        "a" | "b"
            | "strong"
            | "i"
            | "em"
            | "span"
            | "code"
            | "small"
            | "sub"
            | "sup"
            | "mark"
            | "abbr"
            | "time"
            | "u"
            | "s"
            | "q"
            | "cite"
            | "kbd"
            | "br"
            | "wbr"
            | "label"
    )
}

/// All text under an element except skipped parts, with `<br>` as a space.
fn inline_text(el: ElementRef) -> String {
    let mut out = String::new();
    for child in el.children() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) if e.name() == "br" => out.push(' '),
            Node::Element(_) => {
                if let Some(c) = ElementRef::wrap(child).filter(|c| !skipped(c)) {
                    let block = !is_inline(c.value().name());
                    if block {
                        out.push(' ');
                    }
                    out.push_str(&inline_text(c));
                    if block {
                        out.push(' ');
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_main_content_and_drops_boilerplate() {
        let html = r#"<!doctype html><html><head><title>Jane Doe — Portfolio</title>
            <script>var tracking = 1;</script></head><body>
            <header><a href="/">Home</a> <nav><a href="/blog">Blog</a></nav></header>
            <main><h1>Jane Doe</h1><div>Backend engineer in <b>Seoul</b>.</div>
            <h2>Experience</h2><h3>Acme</h3><p>Led the <em>payments</em> rewrite.</p>
            <ul><li>Cut latency by 40%<ul><li>nested detail</li></ul></li></ul>
            <aside>Related posts</aside>
            <table><tr><th>Year</th><th>Role</th></tr><tr><td>2021</td><td>Lead</td></tr></table>
            </main><footer>© 2026 Jane</footer></body></html>"#;
        let e = extract(html);
        assert_eq!(e.title.as_deref(), Some("Jane Doe — Portfolio"));
        let got: Vec<_> = e
            .blocks
            .iter()
            .map(|b| (b.kind, b.text.as_str(), b.headings.join(" › ")))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Kind::Paragraph,
                    "Backend engineer in Seoul.",
                    "Jane Doe".into()
                ),
                (
                    Kind::Paragraph,
                    "Led the payments rewrite.",
                    "Jane Doe › Experience › Acme".into()
                ),
                (
                    Kind::ListItem,
                    "Cut latency by 40%",
                    "Jane Doe › Experience › Acme".into()
                ),
                (
                    Kind::ListItem,
                    "nested detail",
                    "Jane Doe › Experience › Acme".into()
                ),
                (
                    Kind::TableRow,
                    "Year: 2021; Role: Lead",
                    "Jane Doe › Experience › Acme".into()
                ),
            ]
        );
        let all: String = e.blocks.iter().map(|b| b.text.clone()).collect();
        for boiler in ["Blog", "Home", "Related", "tracking", "©"] {
            assert!(!all.contains(boiler), "{boiler} leaked into {all}");
        }
    }
}
