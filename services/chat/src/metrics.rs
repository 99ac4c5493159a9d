//! Questions asked, for `/metrics`: `protostar_questions_total{outcome}` — `answered`,
//! `unsupported` (nothing in the documents supported an answer), `quota-exceeded`, `failed` —
//! and `protostar_quota_refusals_total{quota}` by the counter that was full (`guest-total`,
//! `guest-address-day`, `stargazer-day`, `chatbot-day`).

use crate::ask::quota::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub use crate::content::metrics::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Quota {
    pub quota: &'static str,
}

#[derive(Clone, Default)]
pub struct AskMetrics {
    questions: Family<Outcome, Counter>,
    refusals: Family<Quota, Counter>,
}

impl AskMetrics {
    pub fn register(metrics: &kernel::telemetry::Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "questions",
            "Questions asked of chatbots, by outcome",
            m.questions.clone(),
        );
        metrics.register(
            "quota_refusals",
            "Questions refused because a quota was used up, by quota",
            m.refusals.clone(),
        );
        m
    }

    pub fn refused(&self, kind: Kind) {
        self.asked("quota-exceeded");
        let quota = match kind {
            Kind::GuestTotal => "guest-total",
            Kind::GuestAddressDay => "guest-address-day",
            Kind::StargazerDay => "stargazer-day",
            Kind::ChatbotDay => "chatbot-day",
        };
        self.refusals.get_or_create(&Quota { quota }).inc();
    }

    pub fn asked(&self, outcome: &'static str) {
        self.questions.get_or_create(&Outcome { outcome }).inc();
    }
}
