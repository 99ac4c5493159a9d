//! Questions embedded together. Each ask embeds one short question; run one by one on the
//! blocking pool, fifty at once fight over two cores and each pays a whole model pass. Here at
//! most one pass per core runs at a time, and the questions that arrive meanwhile wait for the
//! next free pass, which embeds them all as one batch (a batch of short texts costs little more
//! than one). A recent question asked again ("What is your tech stack?") comes from a small
//! cache of exact texts.

use super::{EmbedError, LocalInner, Purpose};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Questions in one pass at most.
const MAX_BATCH: usize = 32;
/// Questions remembered.
const CACHE: usize = 4096;
/// Questions waiting at most; past it an ask is refused as a busy model rather than queued
/// without bound.
const QUEUE: usize = 1024;

type Reply = oneshot::Sender<Result<Vec<f32>, EmbedError>>;

/// Vectors of recent texts, by exact text; the oldest is forgotten first.
#[derive(Default)]
pub(crate) struct Cache {
    vectors: HashMap<String, Vec<f32>>,
    order: VecDeque<String>,
}

impl Cache {
    pub(crate) fn get(&self, text: &str) -> Option<Vec<f32>> {
        self.vectors.get(text).cloned()
    }

    pub(crate) fn put(&mut self, text: String, v: Vec<f32>) {
        if self.vectors.insert(text.clone(), v).is_none() {
            self.order.push_back(text);
            if self.order.len() > CACHE
                && let Some(old) = self.order.pop_front()
            {
                self.vectors.remove(&old);
            }
        }
    }
}

pub(super) struct Queries {
    tx: mpsc::Sender<(String, Reply)>,
    cache: Arc<Mutex<Cache>>,
}

impl Queries {
    /// Starts the batching task; it ends when the last handle is dropped.
    pub(super) fn start(inner: Arc<LocalInner>, batch: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<(String, Reply)>(QUEUE);
        let cache = Arc::new(Mutex::new(Cache::default()));
        let store = cache.clone();
        let passes = Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ));
        tokio::spawn(async move {
            loop {
                // A free pass first: the questions that come meanwhile join its batch.
                let Ok(permit) = passes.clone().acquire_owned().await else {
                    return;
                };
                let Some(first) = rx.recv().await else {
                    return;
                };
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                // Whoever stopped waiting (a client gone) costs nothing.
                jobs.retain(|(_, reply)| !reply.is_closed());
                if jobs.is_empty() {
                    drop(permit);
                    continue;
                }
                let texts: Vec<String> = jobs.iter().map(|(t, _)| t.clone()).collect();
                let model = inner.clone();
                let store = store.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || {
                        model.embed(&texts, Purpose::Query, batch.max(MAX_BATCH))
                    })
                    .await
                    .map_err(|e| EmbedError::Model(e.to_string()))
                    .and_then(|r| r);
                    drop(permit);
                    match result {
                        Ok(vectors) => {
                            for ((text, reply), v) in jobs.into_iter().zip(vectors) {
                                if let Ok(mut c) = store.lock() {
                                    c.put(text, v.clone());
                                }
                                let _ = reply.send(Ok(v));
                            }
                        }
                        Err(e) => {
                            for (_, reply) in jobs {
                                let _ = reply.send(Err(EmbedError::Model(e.to_string())));
                            }
                        }
                    }
                });
            }
        });
        Self { tx, cache }
    }

    pub(super) async fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        if let Some(v) = self.cache.lock().ok().and_then(|c| c.get(text)) {
            return Ok(v);
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send((text.to_owned(), reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    EmbedError::Model("too many questions are waiting for the model".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    EmbedError::Model("the question queue has stopped".into())
                }
            })?;
        answer
            .await
            .map_err(|_| EmbedError::Model("the question queue has stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::Cache;

    #[test]
    fn the_cache_forgets_the_oldest_beyond_its_size() {
        let mut c = Cache::default();
        for i in 0..(super::CACHE + 5) {
            c.put(format!("q{i}"), vec![i as f32]);
        }
        assert!(c.get("q0").is_none() && c.get("q4").is_none());
        assert_eq!(c.get("q5"), Some(vec![5.0]));
        assert_eq!(c.vectors.len(), super::CACHE);
        c.put("q5".into(), vec![0.0]);
        assert_eq!(c.vectors.len(), super::CACHE);
    }
}
