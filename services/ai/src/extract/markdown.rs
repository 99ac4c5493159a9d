//! Markdown: headings give the path; paragraphs, list items, table rows and code blocks are blocks.

use super::{Builder, Extracted, Kind};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

pub fn extract(text: &str) -> Extracted {
    let mut b = Builder::default();
    let mut buf = String::new();
    let mut table_head: Vec<String> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut items = 0usize;
    for ev in Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match ev {
            Event::Start(Tag::Heading { .. }) => {
                flush(&mut b, &mut buf, Kind::Paragraph);
            }
            Event::End(TagEnd::Heading(level)) => {
                b.heading(level_number(level), &buf);
                buf.clear();
            }
            Event::Start(Tag::Item) => {
                // A nested list's parent item text is a block before the nested items.
                flush(&mut b, &mut buf, Kind::ListItem);
                items += 1;
            }
            Event::End(TagEnd::Item) => {
                flush(&mut b, &mut buf, Kind::ListItem);
                items = items.saturating_sub(1);
            }
            Event::End(TagEnd::Paragraph) => {
                if items == 0 {
                    flush(&mut b, &mut buf, Kind::Paragraph);
                } else {
                    // Inside an item the paragraph belongs to the item.
                    buf.push(' ');
                }
            }
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::CodeBlock) | Event::End(TagEnd::BlockQuote(_)) => {
                flush(&mut b, &mut buf, Kind::Paragraph)
            }
            Event::Start(Tag::TableHead) => {
                flush(&mut b, &mut buf, Kind::Paragraph);
                table_head.clear();
            }
            Event::End(TagEnd::TableHead) => {
                table_head = std::mem::take(&mut row);
            }
            Event::End(TagEnd::TableCell) => row.push(std::mem::take(&mut buf).trim().to_owned()),
            Event::End(TagEnd::TableRow) => {
                b.block(Kind::TableRow, &table_row(&table_head, &row));
                row.clear();
            }
            Event::Text(t) | Event::Code(t) => buf.push_str(&t),
            Event::SoftBreak | Event::HardBreak => buf.push(' '),
            Event::End(TagEnd::Table) => {
                table_head.clear();
            }
            _ => {}
        }
    }
    flush(&mut b, &mut buf, Kind::Paragraph);
    b.finish()
}

fn flush(b: &mut Builder, buf: &mut String, kind: Kind) {
    if !buf.trim().is_empty() {
        b.block(kind, buf);
    }
    buf.clear();
}

fn level_number(l: HeadingLevel) -> u8 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// A table row as `header: value` pairs, so a row read alone still says what each value is.
pub(crate) fn table_row(head: &[String], cells: &[String]) -> String {
    cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.trim().is_empty())
        .map(
            |(i, c)| match head.get(i).filter(|h| !h.trim().is_empty()) {
                Some(h) => format!("{}: {}", h.trim(), c.trim()),
                None => c.trim().to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Kind;

    #[test]
    fn headings_items_and_table_rows() {
        let md = "# 김민지 이력서\n\n## 경력\n\n### 한빛소프트\n\n결제 시스템을 \
                  **재설계**했습니다.\n\n- 응답 시간 40% 단축\n- 팀 리드\n\n## Skills\n\n\
                  | Skill | Years |\n|---|---|\n| Rust | 5 |\n| Go | 3 |\n";
        let e = extract(md);
        assert_eq!(e.title.as_deref(), Some("김민지 이력서"));
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
                    "결제 시스템을 재설계했습니다.",
                    "김민지 이력서 › 경력 › 한빛소프트".to_owned()
                ),
                (
                    Kind::ListItem,
                    "응답 시간 40% 단축",
                    "김민지 이력서 › 경력 › 한빛소프트".to_owned()
                ),
                (
                    Kind::ListItem,
                    "팀 리드",
                    "김민지 이력서 › 경력 › 한빛소프트".to_owned()
                ),
                (
                    Kind::TableRow,
                    "Skill: Rust; Years: 5",
                    "김민지 이력서 › Skills".to_owned()
                ),
                (
                    Kind::TableRow,
                    "Skill: Go; Years: 3",
                    "김민지 이력서 › Skills".to_owned()
                ),
            ]
        );
    }
}
