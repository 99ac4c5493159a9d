//! Small real documents built in code, for the unit tests here and the integration tests (which
//! include this file by path): a PDF with a text layer, an image-only PDF, an encrypted PDF, a
//! DOCX, a DOCX that expands enormously, and Markdown, HTML and text in English and Korean.
#![allow(dead_code)]

use std::io::Write;

/// A PDF 1.4 file from its objects' bodies (object `i + 1` is `objects[i]`), with a correct
/// cross-reference table and `trailer_extra` added to the trailer dictionary.
pub fn pdf_from_objects(objects: &[Vec<u8>], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn stream(dict_extra: &str, data: &[u8]) -> Vec<u8> {
    let mut s = format!("<< /Length {} {dict_extra}>>\nstream\n", data.len()).into_bytes();
    s.extend_from_slice(data);
    s.extend_from_slice(b"\nendstream");
    s
}

fn pdf_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('(', "\\(")
        .replace(')', "\\)")
}

/// One page per entry of `pages`, each showing its lines in Helvetica.
pub fn pdf_with_text(pages: &[&str]) -> Vec<u8> {
    let n = pages.len();
    // 1 catalog, 2 pages, 3 font, then per page: page object, content stream.
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    for (i, page) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let mut content = String::from("BT /F1 11 Tf 72 740 Td 14 TL\n");
        for line in page.lines() {
            content.push_str(&format!("({}) '\n", pdf_escape(line)));
        }
        content.push_str("ET");
        objects.push(stream("", content.as_bytes()));
    }
    pdf_from_objects(&objects, "")
}

/// The same text layer as PDF 1.5 writers store it: the page and font dictionaries inside a
/// compressed object stream, the content stream Flate-compressed, and a cross-reference stream
/// instead of a table; `/Font` never appears in the plain bytes.
pub fn pdf_with_compressed_text(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 11 Tf 72 740 Td ({}) Tj ET", pdf_escape(text));
    let page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                /Resources << /Font << /F1 5 0 R >> >> /Contents 6 0 R >>";
    let font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";
    let header = format!("4 0 5 {} ", page.len() + 1);
    let objstm = format!("{header}{page} {font}");
    let bodies: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_vec(),
        stream(
            &format!(
                "/Type /ObjStm /N 2 /First {} /Filter /FlateDecode ",
                header.len()
            ),
            &deflate(objstm.as_bytes()),
        ),
        stream("/Filter /FlateDecode ", &deflate(content.as_bytes())),
    ];
    let mut out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (number, body) in [1, 2, 3, 6].into_iter().zip(&bodies) {
        offsets.push(out.len());
        out.extend_from_slice(format!("{number} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = out.len();
    // Entries 0..=7, /W [1 4 2]: type, offset or object stream, generation or index.
    let entry = |t: u8, a: usize, b: u16| {
        let mut e = vec![t];
        e.extend_from_slice(&(a as u32).to_be_bytes());
        e.extend_from_slice(&b.to_be_bytes());
        e
    };
    let mut table = entry(0, 0, 65535);
    table.extend(entry(1, offsets[0], 0));
    table.extend(entry(1, offsets[1], 0));
    table.extend(entry(1, offsets[2], 0));
    table.extend(entry(2, 3, 0));
    table.extend(entry(2, 3, 1));
    table.extend(entry(1, offsets[3], 0));
    table.extend(entry(1, xref_at, 0));
    out.extend_from_slice(b"7 0 obj\n");
    out.extend_from_slice(&stream(
        "/Type /XRef /Size 8 /W [1 4 2] /Root 1 0 R ",
        &table,
    ));
    out.extend_from_slice(format!("\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

/// A scanned page: one image and no font anywhere.
pub fn pdf_image_only() -> Vec<u8> {
    let pixels = vec![0x80u8; 16 * 16];
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
           /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>"
            .to_vec(),
        stream(
            "/Type /XObject /Subtype /Image /Width 16 /Height 16 /ColorSpace /DeviceGray \
             /BitsPerComponent 8 /Filter /FlateDecode ",
            &deflate(&pixels),
        ),
        stream(
            "/Filter /FlateDecode ",
            &deflate(b"q 612 0 0 792 0 0 cm /Im1 Do Q"),
        ),
    ];
    pdf_from_objects(&objects, "")
}

/// A PDF whose trailer names a standard security handler (password-protected).
pub fn pdf_encrypted() -> Vec<u8> {
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
           /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_vec(),
        stream("", b"\x93\x1f\xa0\x5c\x11\xee\x02\x88\x9d\x41"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        format!(
            "<< /Filter /Standard /V 2 /R 3 /Length 128 /P -3904 /O <{}> /U <{}> >>",
            "6a".repeat(32),
            "c3".repeat(32)
        )
        .into_bytes(),
    ];
    pdf_from_objects(
        &objects,
        "/Encrypt 6 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] ",
    )
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `word/document.xml` with a heading and paragraphs.
pub fn document_xml(heading: &str, paragraphs: &[&str]) -> String {
    let mut body = format!(
        r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>{}</w:t></w:r></w:p>"#,
        xml_escape(heading)
    );
    for p in paragraphs {
        body.push_str(&format!(
            r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#,
            xml_escape(p)
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    )
}

/// A ZIP of `(name, contents)` entries, deflated as Word writes them.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    for (name, data) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A minimal real DOCX: content types, package relationships and the document part.
pub fn docx(heading: &str, paragraphs: &[&str]) -> Vec<u8> {
    let doc = document_xml(heading, paragraphs);
    zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", RELS.as_bytes()),
        ("word/document.xml", doc.as_bytes()),
    ])
}

/// A DOCX carrying an entry of `expanded` zero bytes: a few KiB on the wire per MiB expanded.
pub fn docx_bomb(expanded: usize) -> Vec<u8> {
    let doc = document_xml("Résumé", &["Nothing to see."]);
    let padding = vec![0u8; expanded];
    zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", RELS.as_bytes()),
        ("word/document.xml", doc.as_bytes()),
        ("word/media/padding.bin", &padding),
    ])
}

/// A ZIP that is not a Word document.
pub fn plain_zip() -> Vec<u8> {
    zip_of(&[("notes.txt", b"just some notes in an archive")])
}

pub const MARKDOWN_EN: &str = "# Jane Doe\n\nBackend engineer, Rust and PostgreSQL.\n\n\
## Experience\n\n- **Acme Corp** (2021–2024): built the [billing pipeline](https://example.com) \
in Rust.\n- Led a team of four.\n\n## Education\n\nBSc Computer Science, 2020.\n";

pub const MARKDOWN_KO: &str = "# 김민준 이력서\n\n백엔드 개발자입니다. Rust와 PostgreSQL을 주로 씁니다.\n\n\
## 경력\n\n- **네이버** (2020–2023): 검색 색인 파이프라인을 만들었습니다.\n- 팀 리드로 4명과 일했습니다.\n\n\
## 학력\n\n서울대학교 컴퓨터공학과 졸업 (2019).\n";

pub const HTML_EN: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Jane Doe</title></head>\
<body><nav><a href=\"/\">Home</a></nav><main><h1>Jane Doe</h1><p>Backend engineer at Acme.</p>\
</main></body></html>\n";

pub const TEXT_EN: &str = "Cover letter\n\nDear hiring manager,\n\nI have five years of experience \
building reliable backend services. At Acme I cut the p99 latency of the billing API in half.\n\n\
Kind regards,\nJane Doe\n";

pub const TEXT_KO: &str = "자기소개서\n\n안녕하세요. 저는 5년 차 백엔드 개발자 김민준입니다.\n\
대용량 트래픽을 처리하는 결제 시스템을 설계하고 운영했습니다.\n감사합니다.\n";

/// Every fixture that must be accepted, with a name for messages.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("pdf", pdf_with_text(&["Jane Doe", "Backend engineer"])),
        (
            "pdf-compressed",
            pdf_with_compressed_text("Jane Doe, engineer"),
        ),
        ("docx", docx("Jane Doe", &["Backend engineer."])),
        ("docx-ko", docx("김민준", &["백엔드 개발자입니다."])),
        ("markdown", MARKDOWN_EN.as_bytes().to_vec()),
        ("markdown-ko", MARKDOWN_KO.as_bytes().to_vec()),
        ("html", HTML_EN.as_bytes().to_vec()),
        ("text", TEXT_EN.as_bytes().to_vec()),
        ("text-ko", TEXT_KO.as_bytes().to_vec()),
    ]
}
