//! Events between services: the envelope, the transactional outbox, the relay, consumers that
//! apply each event once, and dead letters. Two buses behind one type: RabbitMQ (topic exchange
//! `protostar.events`) when a broker is configured, in-process delivery when not, with the same
//! at-least-once semantics.

pub mod audit;
pub mod chat;
pub mod consumer;
pub mod content;
pub mod dead_letter;
pub mod envelope;
mod local;
pub mod metrics;
pub mod outbox;
pub mod pattern;
mod rabbit;
pub mod relay;

pub use consumer::{Handler, HandlerError, RetryPolicy, Subscription};
pub use envelope::Event;

use crate::Secret;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub const EXCHANGE: &str = "protostar.events";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `amqp://user:password@host:5672/%2f`
    pub url: Secret<String>,
    /// Unacknowledged deliveries per consumer, and so its concurrency.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
}

fn default_prefetch() -> u16 {
    16
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker: {0}")]
    Broker(String),
    #[error("no consumer named `{0}` is running")]
    NoConsumer(String),
    #[error("the bus is shut down")]
    Closed,
}

impl From<lapin::Error> for BusError {
    fn from(e: lapin::Error) -> Self {
        Self::Broker(e.to_string())
    }
}

#[derive(Clone)]
pub enum Bus {
    Rabbit(rabbit::RabbitBus),
    Local(local::LocalBus),
}

impl Bus {
    /// RabbitMQ when configured, in-process otherwise.
    pub fn from_config(config: Option<&BrokerConfig>) -> Self {
        match config {
            Some(c) => Self::Rabbit(rabbit::RabbitBus::new(c.url.clone(), c.prefetch)),
            None => Self::Local(local::LocalBus::new()),
        }
    }

    pub fn local() -> Self {
        Self::Local(local::LocalBus::new())
    }

    pub fn rabbit(url: &str) -> Self {
        Self::Rabbit(rabbit::RabbitBus::new(
            Secret::new(url.to_owned()),
            default_prefetch(),
        ))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rabbit(_) => "rabbitmq",
            Self::Local(_) => "in-process",
        }
    }

    /// Returns once every event is confirmed by the broker (or, in-process, applied).
    pub async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        match self {
            Self::Rabbit(b) => b.publish(events).await,
            Self::Local(b) => b.publish(events).await,
        }
    }

    /// Starts a consumer; it runs (reconnecting as needed) until `stop`.
    pub fn start_consumer(
        &self,
        sub: Subscription,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        match self {
            Self::Rabbit(b) => b.start_consumer(sub, stop),
            Self::Local(b) => b.start_consumer(sub, stop),
        }
    }

    /// Hands a message to one consumer only (retrying a dead letter).
    pub async fn redeliver(&self, consumer: &str, payload: &[u8]) -> Result<(), BusError> {
        match self {
            Self::Rabbit(b) => b.redeliver(consumer, payload).await,
            Self::Local(b) => b.redeliver(consumer, payload).await,
        }
    }

    /// For `/readyz`: can we publish right now?
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Self::Rabbit(b) => b.check().await,
            Self::Local(_) => Ok(()),
        }
    }
}
