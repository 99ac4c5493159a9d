//! `chat.content.*` settings: how large an upload may be and how much work checking it may cost.

use super::sniff::Limits;
use kernel::ConfigError;
use serde::Deserialize;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentConfig {
    /// Largest original accepted (`413` above it). Each upload is held in memory while it is
    /// checked and stored, so this also bounds the memory one upload costs.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// Total bytes a DOCX may unpack to (zip bombs).
    #[serde(default = "default_docx_expanded")]
    pub docx_max_expanded_bytes: u64,
    /// Files a DOCX archive may hold.
    #[serde(default = "default_docx_entries")]
    pub docx_max_entries: usize,
    /// Compressed PDF streams inflated at most while looking for a text layer.
    #[serde(default = "default_pdf_inflated")]
    pub pdf_max_inflated_bytes: u64,
    /// Uploads read and checked at the same time; more wait their turn before their body is
    /// read, so memory stays below this times `max_upload_bytes`.
    #[serde(default = "default_concurrent_uploads")]
    pub max_concurrent_uploads: usize,
}

fn default_max_upload() -> u64 {
    20 * MIB
}
fn default_docx_expanded() -> u64 {
    100 * MIB
}
fn default_docx_entries() -> usize {
    2000
}
fn default_pdf_inflated() -> u64 {
    64 * MIB
}
fn default_concurrent_uploads() -> usize {
    8
}

impl Default for ContentConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: default_max_upload(),
            docx_max_expanded_bytes: default_docx_expanded(),
            docx_max_entries: default_docx_entries(),
            pdf_max_inflated_bytes: default_pdf_inflated(),
            max_concurrent_uploads: default_concurrent_uploads(),
        }
    }
}

impl ContentConfig {
    /// Bounds that keep one upload from exhausting the process; every bad key is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let mut bound = |key: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                errors.push(ConfigError::key(
                    &format!("chat.content.{key}"),
                    format!("must be between {min} and {max} (got {value})"),
                ));
            }
        };
        bound("max_upload_bytes", self.max_upload_bytes, 1024, 1024 * MIB);
        bound(
            "docx_max_expanded_bytes",
            self.docx_max_expanded_bytes,
            MIB,
            4096 * MIB,
        );
        bound(
            "docx_max_entries",
            self.docx_max_entries as u64,
            10,
            100_000,
        );
        bound(
            "pdf_max_inflated_bytes",
            self.pdf_max_inflated_bytes,
            MIB,
            4096 * MIB,
        );
        bound(
            "max_concurrent_uploads",
            self.max_concurrent_uploads as u64,
            1,
            1024,
        );
        ConfigError::collect(errors)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            docx_max_expanded_bytes: self.docx_max_expanded_bytes,
            docx_max_entries: self.docx_max_entries,
            pdf_max_inflated_bytes: self.pdf_max_inflated_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_keys() {
        ContentConfig::default().validate().unwrap();
        let bad = ContentConfig {
            max_upload_bytes: 0,
            docx_max_entries: 1,
            ..Default::default()
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("chat.content.max_upload_bytes"), "{msg}");
        assert!(
            msg.contains("PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES"),
            "{msg}"
        );
        assert!(msg.contains("chat.content.docx_max_entries"), "{msg}");
    }

    #[test]
    fn the_section_reads_from_the_environment() {
        let source = kernel::config::ConfigSource::from_vars([(
            "PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES".to_owned(),
            "4096".to_owned(),
        )])
        .unwrap();
        let c: crate::ChatConfig = source.section("chat").unwrap();
        assert_eq!(c.content.max_upload_bytes, 4096);
        assert_eq!(c.content.docx_max_entries, 2000);
    }
}
