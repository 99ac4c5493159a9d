//! Event counters, shared by every relay and consumer of the process and exported with the
//! rest of `/metrics`: what was published per schema, and what consumers did with deliveries.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::OnceLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SchemaLabel {
    pub schema: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
    /// applied, duplicate, retried, parked, requeued
    pub outcome: String,
}

#[derive(Clone, Default)]
pub struct EventMetrics {
    pub published: Family<SchemaLabel, Counter>,
    pub publish_failures: Family<SchemaLabel, Counter>,
    pub consumed: Family<ConsumerLabels, Counter>,
}

/// The process-wide counters; relays and consumers have no other handle on the registry.
pub fn get() -> &'static EventMetrics {
    static METRICS: OnceLock<EventMetrics> = OnceLock::new();
    METRICS.get_or_init(EventMetrics::default)
}

pub(crate) fn consumed(consumer: &str, outcome: &str) {
    get()
        .consumed
        .get_or_create(&ConsumerLabels {
            consumer: consumer.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}
