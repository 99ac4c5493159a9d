//! Questions asked, for `/metrics`: `protostar_questions_total{outcome}` — `answered`,
//! `unsupported` (nothing in the documents supported an answer), `quota-exceeded`, `failed`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub use crate::content::metrics::Outcome;

#[derive(Clone, Default)]
pub struct AskMetrics {
    questions: Family<Outcome, Counter>,
}

impl AskMetrics {
    pub fn register(metrics: &kernel::telemetry::Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "questions",
            "Questions asked of chatbots, by outcome",
            m.questions.clone(),
        );
        m
    }

    pub fn asked(&self, outcome: &'static str) {
        self.questions.get_or_create(&Outcome { outcome }).inc();
    }
}
