//! In-process delivery for a single machine with no broker. The relay's publish returns only
//! when every matching consumer has committed (or parked) the event, so the outbox row is marked
//! sent only then: a crash before that means the relay delivers it again after restart, and the
//! consumers' processed-event records make the second delivery change nothing. That is the same
//! at-least-once contract as with RabbitMQ.

use super::consumer::{self, Disposition, Subscription};
use super::{BusError, Event, pattern};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

struct Delivery {
    payload: Arc<[u8]>,
    done: oneshot::Sender<Disposition>,
}

struct Registered {
    /// Tells a consumer's registration from that of a later one with the same name.
    id: u64,
    name: String,
    patterns: Vec<String>,
    inbox: mpsc::Sender<Delivery>,
}

#[derive(Clone, Default)]
pub struct LocalBus {
    consumers: Arc<RwLock<Vec<Registered>>>,
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const REQUEUE_DELAY: Duration = Duration::from_millis(500);
const CONCURRENCY: usize = 16;

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        let mut deliveries = Vec::new();
        for event in events {
            let payload: Arc<[u8]> = event.to_bytes().into();
            for (name, inbox) in self.matching(&event.event_type) {
                deliveries.push(deliver(name, inbox, payload.clone()));
            }
        }
        for r in futures::future::join_all(deliveries).await {
            r?;
        }
        Ok(())
    }

    pub async fn redeliver(&self, consumer: &str, payload: &[u8]) -> Result<(), BusError> {
        let inbox = self
            .consumers
            .read()
            .map_err(|_| BusError::Closed)?
            .iter()
            .find(|c| c.name == consumer)
            .map(|c| c.inbox.clone())
            .ok_or_else(|| BusError::NoConsumer(consumer.to_owned()))?;
        deliver(consumer.to_owned(), inbox, payload.into()).await
    }

    fn matching(&self, event_type: &str) -> Vec<(String, mpsc::Sender<Delivery>)> {
        self.consumers
            .read()
            .map(|cs| {
                cs.iter()
                    .filter(|c| c.patterns.iter().any(|p| pattern::matches(p, event_type)))
                    .map(|c| (c.name.clone(), c.inbox.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn start_consumer(
        &self,
        sub: Subscription,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = mpsc::channel::<Delivery>(CONCURRENCY * 4);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut cs) = self.consumers.write() {
            cs.retain(|c| c.name != sub.name);
            cs.push(Registered {
                id,
                name: sub.name.clone(),
                patterns: sub.patterns.clone(),
                inbox: tx,
            });
        }
        let consumers = self.consumers.clone();
        tokio::spawn(async move {
            let limit = Arc::new(Semaphore::new(sub.limit(CONCURRENCY)));
            let batch = sub.batch_size(CONCURRENCY);
            loop {
                // What is waiting, up to a batch; at least one.
                let mut deliveries = Vec::with_capacity(batch);
                let got = tokio::select! {
                    _ = stop.cancelled() => break,
                    n = rx.recv_many(&mut deliveries, batch) => n,
                };
                if got == 0 {
                    break;
                }
                let Ok(permit) = limit
                    .clone()
                    .acquire_many_owned(consumer::permits(got))
                    .await
                else {
                    break;
                };
                let sub = sub.clone();
                tokio::spawn(async move {
                    let payloads: Vec<&[u8]> = deliveries.iter().map(|d| &*d.payload).collect();
                    let outcomes = consumer::process_batch(&sub, &payloads).await;
                    for (delivery, outcome) in deliveries.into_iter().zip(outcomes) {
                        let _ = delivery.done.send(outcome);
                    }
                    drop(permit);
                });
            }
            if let Ok(mut cs) = consumers.write() {
                cs.retain(|c| c.id != id);
            }
        })
    }
}

async fn deliver(
    name: String,
    inbox: mpsc::Sender<Delivery>,
    payload: Arc<[u8]>,
) -> Result<(), BusError> {
    loop {
        let (done, outcome) = oneshot::channel();
        inbox
            .send(Delivery {
                payload: payload.clone(),
                done,
            })
            .await
            .map_err(|_| BusError::NoConsumer(name.clone()))?;
        match outcome.await {
            Ok(Disposition::Ack) => return Ok(()),
            Ok(Disposition::Requeue) => tokio::time::sleep(REQUEUE_DELAY).await,
            // The consumer stopped mid-delivery; the relay will try again.
            Err(_) => return Err(BusError::NoConsumer(name)),
        }
    }
}
