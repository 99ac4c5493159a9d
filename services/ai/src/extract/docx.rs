//! DOCX: `word/document.xml` read as a stream. Paragraph styles `Title`/`HeadingN` give the
//! heading path, numbered paragraphs are list items, tables become `header: value` rows (the
//! first row is the header). Reading is bounded: chat refuses zip bombs at upload, and this side
//! still stops at [`MAX_XML_BYTES`] so a bad original cannot exhaust memory.

use super::{Builder, ExtractError, Extracted, Kind, markdown::table_row};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::io::{Cursor, Read};

pub const MAX_XML_BYTES: u64 = 64 * 1024 * 1024;

pub fn extract(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ExtractError::Docx(e.to_string()))?;
    let entry = zip
        .by_name("word/document.xml")
        .map_err(|_| ExtractError::Docx("no word/document.xml".into()))?;
    let mut xml = String::new();
    entry
        .take(MAX_XML_BYTES + 1)
        .read_to_string(&mut xml)
        .map_err(|e| ExtractError::Docx(e.to_string()))?;
    if xml.len() as u64 > MAX_XML_BYTES {
        return Err(ExtractError::Docx("document.xml is too large".into()));
    }
    parse(&xml)
}

#[derive(Default)]
struct Para {
    text: String,
    style: Option<String>,
    numbered: bool,
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

fn parse(xml: &str) -> Result<Extracted, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut b = Builder::default();
    let mut para: Option<Para> = None;
    let mut in_text = false;
    // Tables: rows of cells; nested tables are flattened into their cell's text.
    let mut table_depth = 0usize;
    let mut row: Vec<String> = Vec::new();
    let mut cell: Option<String> = None;
    let mut head: Vec<String> = Vec::new();
    let mut first_row = true;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| ExtractError::Docx(e.to_string()))?;
        match ev {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "w:p" => para = Some(Para::default()),
                "w:pStyle" => {
                    if let Some(p) = para.as_mut() {
                        p.style = attr(&e, "w:val");
                    }
                }
                "w:numPr" => {
                    if let Some(p) = para.as_mut() {
                        p.numbered = true;
                    }
                }
                "w:t" => in_text = true,
                "w:tab" | "w:br" | "w:cr" => {
                    if let Some(p) = para.as_mut() {
                        p.text.push(' ');
                    }
                }
                "w:tbl" => {
                    table_depth += 1;
                    if table_depth == 1 {
                        head.clear();
                        first_row = true;
                    }
                }
                "w:tr" if table_depth == 1 => row.clear(),
                "w:tc" if table_depth == 1 => cell = Some(String::new()),
                _ => {}
            },
            Event::Text(t) if in_text => {
                if let Some(p) = para.as_mut() {
                    p.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) if in_text => {
                if let Some(p) = para.as_mut() {
                    let s: &str = &r;
                    let ch = match s {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => r.resolve_char_ref().ok().flatten(),
                    };
                    p.text.extend(ch);
                }
            }
            Event::End(e) => match e.name().as_ref() {
                "w:t" => in_text = false,
                "w:p" => {
                    if let Some(p) = para.take() {
                        if let Some(c) = cell.as_mut() {
                            if !c.is_empty() {
                                c.push(' ');
                            }
                            c.push_str(p.text.trim());
                        } else {
                            paragraph(&mut b, p);
                        }
                    }
                }
                "w:tc" if table_depth == 1 => row.extend(cell.take()),
                "w:tr" if table_depth == 1 => {
                    if first_row {
                        head = std::mem::take(&mut row);
                        first_row = false;
                    } else {
                        b.block(Kind::TableRow, &table_row(&head, &row));
                    }
                }
                "w:tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    // A one-row table has only its header: keep it as a row of values.
                    if table_depth == 0 && !head.is_empty() && first_row {
                        b.block(Kind::TableRow, &head.join("; "));
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(b.finish())
}

fn paragraph(b: &mut Builder, p: Para) {
    let style = p.style.as_deref().unwrap_or("");
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        b.title(&p.text);
        b.heading(1, &p.text);
    } else if let Some(n) = lower
        .strip_prefix("heading")
        .and_then(|n| n.trim().parse::<u8>().ok())
    {
        // Title is level 1, so Heading1 sits below it.
        b.heading(n.saturating_add(1), &p.text);
    } else if p.numbered || lower.starts_with("listparagraph") || lower.starts_with("listbullet") {
        b.block(Kind::ListItem, &p.text);
    } else {
        b.block(Kind::Paragraph, &p.text);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A real DOCX: the parts Word needs ([Content_Types].xml, the package and document
    /// relationships, document.xml), deflated in a ZIP, written by this test's own generator.
    pub fn docx(body: &str) -> Vec<u8> {
        let doc = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        );
        let parts = [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned(),
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_owned(),
            ),
            ("word/document.xml", doc),
        ];
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in parts {
            w.start_file(name, opts).unwrap();
            w.write_all(text.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    pub fn p(style: &str, text: &str) -> String {
        let ppr = if style.is_empty() {
            String::new()
        } else if style == "list" {
            r#"<w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr>"#.into()
        } else {
            format!(r#"<w:pPr><w:pStyle w:val="{style}"/></w:pPr>"#)
        };
        format!(r#"<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
    }

    fn tc(text: &str) -> String {
        format!("<w:tc>{}</w:tc>", p("", text))
    }

    #[test]
    fn headings_lists_and_table_rows() {
        let body = [
            p("Title", "이력서 — 박서준"),
            p("Heading1", "경력"),
            p("Heading2", "네오데이터 (2020–2024)"),
            p(
                "",
                "데이터 파이프라인을 Kafka &amp; Flink로 재구축했습니다.",
            ),
            p("list", "처리량 3배 향상"),
            p("Heading1", "Certificates"),
            format!(
                "<w:tbl><w:tr>{}{}</w:tr><w:tr>{}{}</w:tr></w:tbl>",
                tc("Name"),
                tc("Year"),
                tc("AWS SA Pro"),
                tc("2022")
            ),
        ]
        .concat();
        let e = extract(&docx(&body)).unwrap();
        assert_eq!(e.title.as_deref(), Some("이력서 — 박서준"));
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
                    "데이터 파이프라인을 Kafka & Flink로 재구축했습니다.",
                    "이력서 — 박서준 › 경력 › 네오데이터 (2020–2024)".into()
                ),
                (
                    Kind::ListItem,
                    "처리량 3배 향상",
                    "이력서 — 박서준 › 경력 › 네오데이터 (2020–2024)".into()
                ),
                (
                    Kind::TableRow,
                    "Name: AWS SA Pro; Year: 2022",
                    "이력서 — 박서준 › Certificates".into()
                ),
            ]
        );
    }

    #[test]
    fn not_a_docx_is_an_error() {
        assert!(matches!(
            extract(b"PK\x03\x04junk"),
            Err(ExtractError::Docx(_))
        ));
    }
}
