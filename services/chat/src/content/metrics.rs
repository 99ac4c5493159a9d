//! What happens to uploads, for `/metrics`: `protostar_document_uploads_total{outcome}`, where
//! `outcome` is `accepted` or the reason of a refusal, so a dashboard shows what people try to
//! upload and why it fails.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct UploadMetrics {
    uploads: Family<Outcome, Counter>,
}

impl UploadMetrics {
    pub fn register(metrics: &kernel::telemetry::Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "document_uploads",
            "Document uploads by outcome (accepted, or why refused)",
            m.uploads.clone(),
        );
        m
    }

    pub fn count(&self, outcome: &'static str) {
        self.uploads.get_or_create(&Outcome { outcome }).inc();
    }

    /// A refusal before or after the content checks, in the same words as theirs.
    pub fn count_problem(&self, p: &kernel::Problem) {
        use kernel::Problem;
        self.count(match p {
            Problem::PayloadTooLarge(_) => "too-large",
            Problem::UnsupportedMediaType(_) => "unsupported",
            Problem::InvalidRequest { .. } => "malformed",
            _ => "failed",
        });
    }
}
