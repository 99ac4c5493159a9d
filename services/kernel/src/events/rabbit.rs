//! RabbitMQ: publishing with publisher confirms to the topic exchange `protostar.events`, and a
//! durable queue per consumer (`protostar.<consumer>`) bound to its patterns. Messages are
//! persistent; a consumer acknowledges only after its transaction committed. Connections are
//! re-established with backoff, so a broker outage delays events and loses none.

use super::consumer::{self, Disposition, Subscription};
use super::{BusError, EXCHANGE, Event};
use crate::Secret;
use futures::StreamExt;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

const PERSISTENT: u8 = 2;
/// Where events that match no consumer's binding are kept.
pub const UNROUTED: &str = "protostar.unrouted";
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn queue_name(consumer: &str) -> String {
    format!("protostar.{consumer}")
}

#[derive(Clone)]
pub struct RabbitBus {
    url: Arc<Secret<String>>,
    prefetch: u16,
    publisher: Arc<Mutex<Option<(Connection, Channel)>>>,
}

impl RabbitBus {
    pub fn new(url: Secret<String>, prefetch: u16) -> Self {
        Self {
            url: Arc::new(url),
            prefetch: prefetch.max(1),
            publisher: Arc::new(Mutex::new(None)),
        }
    }

    async fn connect(&self) -> Result<Connection, BusError> {
        let connect = Connection::connect(self.url.expose(), ConnectionProperties::default());
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(BusError::Broker(e.to_string())),
            Err(_) => Err(BusError::Broker("connecting timed out".into())),
        }
    }

    /// The topic exchange, with an alternate exchange: an event no queue is bound for yet (a
    /// consumer not yet deployed, or still starting) lands in `protostar.unrouted` instead of
    /// being dropped by the broker, so that nothing confirmed is ever lost.
    async fn declare_exchange(ch: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            UNROUTED.into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            UNROUTED.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            UNROUTED.into(),
            UNROUTED.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let mut args = FieldTable::default();
        args.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(UNROUTED.into()),
        );
        ch.exchange_declare(EXCHANGE.into(), ExchangeKind::Topic, durable, args)
            .await
    }

    /// The confirming channel, opened on first use and again after any failure.
    async fn publish_channel(&self) -> Result<Channel, BusError> {
        let mut slot = self.publisher.lock().await;
        if let Some((conn, ch)) = slot.as_ref()
            && conn.status().connected()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        *slot = None;
        let conn = self.connect().await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Self::declare_exchange(&ch).await?;
        *slot = Some((conn, ch.clone()));
        Ok(ch)
    }

    async fn forget_publisher(&self) {
        // Take it out first: the lock must not be held while closing, and closing a connection
        // whose broker vanished may never finish, hence the bound.
        let old = self.publisher.lock().await.take();
        if let Some((conn, _)) = old {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close(0, "reconnecting".into())).await;
        }
    }

    pub async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        let result = tokio::time::timeout(PUBLISH_TIMEOUT, self.publish_confirmed(events)).await;
        let result =
            result.unwrap_or_else(|_| Err(BusError::Broker("publishing timed out".into())));
        if result.is_err() {
            self.forget_publisher().await;
        }
        result
    }

    async fn publish_confirmed(&self, events: &[Event]) -> Result<(), BusError> {
        let ch = self.publish_channel().await?;
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let props = BasicProperties::default()
                .with_message_id(event.id.to_string().into())
                .with_content_type("application/cloudevents+json".into())
                .with_type(event.event_type.clone().into())
                .with_delivery_mode(PERSISTENT);
            let confirm = ch
                .basic_publish(
                    EXCHANGE.into(),
                    event.event_type.clone().into(),
                    BasicPublishOptions::default(),
                    &event.to_bytes(),
                    props,
                )
                .await?;
            confirms.push(confirm);
        }
        for c in confirms {
            match c.await? {
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
                Confirmation::Nack(_) => {
                    return Err(BusError::Broker("the broker refused a message".into()));
                }
            }
        }
        Ok(())
    }

    /// Puts a message straight into one consumer's queue (through the default exchange).
    pub async fn redeliver(&self, consumer: &str, payload: &[u8]) -> Result<(), BusError> {
        let ch = self.publish_channel().await?;
        let confirm = ch
            .basic_publish(
                "".into(),
                queue_name(consumer).into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(PERSISTENT),
            )
            .await?;
        match confirm.await? {
            Confirmation::Nack(_) => Err(BusError::Broker("the broker refused a message".into())),
            _ => Ok(()),
        }
    }

    pub async fn check(&self) -> Result<(), String> {
        self.publish_channel()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn start_consumer(
        &self,
        sub: Subscription,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            while !stop.is_cancelled() {
                match bus.consume(&sub, &stop).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(consumer = %sub.name, error = %e, "consumer lost the broker; reconnecting");
                    }
                }
                let delay = Duration::from_millis(200u64.saturating_mul(1 << failures.min(6)));
                tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(delay) => {} }
            }
        })
    }

    async fn consume(&self, sub: &Subscription, stop: &CancellationToken) -> Result<(), BusError> {
        let conn = self.connect().await?;
        let ch = conn.create_channel().await?;
        let in_flight = sub.limit(usize::from(self.prefetch));
        ch.basic_qos(
            u16::try_from(in_flight).unwrap_or(self.prefetch),
            BasicQosOptions::default(),
        )
        .await?;
        Self::declare_exchange(&ch).await?;
        let queue = queue_name(&sub.name);
        ch.queue_declare(
            queue.clone().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        for p in &sub.patterns {
            ch.queue_bind(
                queue.clone().into(),
                EXCHANGE.into(),
                p.clone().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        let deliveries = ch
            .basic_consume(
                queue.clone().into(),
                format!("{}-{}", sub.name, uuid::Uuid::new_v4().simple()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(consumer = %sub.name, queue = %queue, "consuming");
        let limit = Arc::new(Semaphore::new(in_flight));
        // What the broker has already sent us, up to a batch (at least one).
        let mut deliveries = deliveries.ready_chunks(sub.batch_size(in_flight));
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => break,
                d = deliveries.next() => d,
            };
            let Some(chunk) = next else {
                return Err(BusError::Broker(
                    "the consumer was cancelled by the broker".into(),
                ));
            };
            let mut lost = None;
            let mut batch = Vec::with_capacity(chunk.len());
            for d in chunk {
                match d {
                    Ok(d) => batch.push(d),
                    Err(e) => lost = Some(e),
                }
            }
            if !batch.is_empty() {
                let n = consumer::permits(batch.len());
                let Ok(permit) = limit.clone().acquire_many_owned(n).await else {
                    break;
                };
                let sub = sub.clone();
                tokio::spawn(async move {
                    let payloads: Vec<&[u8]> = batch.iter().map(|d| d.data.as_slice()).collect();
                    let outcomes = consumer::process_batch(&sub, &payloads).await;
                    if outcomes.contains(&Disposition::Requeue) {
                        // Our database is down; give it a moment before the messages return.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    for (delivery, outcome) in batch.iter().zip(outcomes) {
                        settle(&sub, delivery, outcome).await;
                    }
                    drop(permit);
                });
            }
            if let Some(e) = lost {
                return Err(e.into());
            }
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close(0, "stopping".into())).await;
        Ok(())
    }
}

/// Acknowledges a delivery, or returns it to the queue when its outcome could not be recorded.
async fn settle(sub: &Subscription, delivery: &lapin::message::Delivery, outcome: Disposition) {
    let acked = match outcome {
        Disposition::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        Disposition::Requeue => {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
    };
    // A lost ack means a redelivery, which the processed-event record absorbs.
    if let Err(e) = acked {
        tracing::warn!(consumer = %sub.name, error = %e, "acknowledgement lost");
    }
}
