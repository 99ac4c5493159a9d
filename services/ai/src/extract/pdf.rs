//! PDF: the text layer, page by page, so every chunk can cite its page. Encrypted PDFs and PDFs
//! without a text layer (scans) are refused with a reason; no OCR here.

use super::{Builder, ExtractError, Extracted, split_paragraphs};

/// Decompressed content per page at most, so a small stream cannot inflate without bound.
const MAX_PAGE_CONTENT: usize = 32 * 1024 * 1024;

pub fn extract(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| match e {
        lopdf::Error::Decryption(_) => ExtractError::Encrypted,
        e => ExtractError::Pdf(e.to_string()),
    })?;
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let mut b = Builder::default();
    for page in doc.get_pages().keys().copied() {
        let text = doc
            .extract_text_with_limit(&[page], MAX_PAGE_CONTENT)
            .map_err(|e| ExtractError::Pdf(format!("page {page}: {e}")))?;
        b.page(page);
        for para in split_paragraphs(&text) {
            b.paragraph_or_item(&para);
        }
    }
    Ok(b.finish())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real PDF 1.4 with one Helvetica text object per page, each line placed with `Td`:
    /// written by this generator (objects, cross-reference table with byte offsets, trailer).
    pub fn pdf(pages: &[&[&str]]) -> Vec<u8> {
        let n = pages.len();
        // Objects: 1 catalog, 2 pages, 3 font, then (page, content) pairs.
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".into(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {n} >>",
                (0..n)
                    .map(|i| format!("{} 0 R", 4 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .into(),
        ];
        for (i, lines) in pages.iter().enumerate() {
            let mut content = String::from("BT /F1 11 Tf 72 760 Td 14 TL\n");
            for l in lines.iter() {
                let esc = l
                    .replace('\\', "\\\\")
                    .replace('(', "\\(")
                    .replace(')', "\\)");
                content.push_str(&format!("({esc}) Tj T*\n"));
            }
            content.push_str("ET");
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ));
        }
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    #[test]
    fn text_layer_with_page_numbers() {
        let bytes = pdf(&[
            &[
                "Jane Doe - Curriculum Vitae",
                "Senior backend engineer (Rust, Go).",
            ],
            &["Led the payments migration at Acme in 2023."],
        ]);
        let e = extract(&bytes).unwrap();
        let page_of = |needle: &str| {
            e.blocks
                .iter()
                .find(|b| b.text.contains(needle))
                .and_then(|b| b.page)
        };
        assert_eq!(page_of("Senior backend engineer"), Some(1), "{e:?}");
        assert_eq!(page_of("payments migration"), Some(2), "{e:?}");
    }

    #[test]
    fn truncated_or_garbage_pdf_is_an_error() {
        let bytes = pdf(&[&["hello"]]);
        assert!(extract(&bytes[..40]).is_err());
        assert!(extract(b"%PDF-1.7 nothing else").is_err());
    }

    #[test]
    fn a_pdf_without_text_is_empty() {
        let e = extract(&pdf(&[&[]])).unwrap();
        assert!(e.blocks.is_empty());
    }
}
