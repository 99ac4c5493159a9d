//! A bounded set of connections that have not finished their ClientHello. When it is full the
//! *oldest* is evicted rather than the newcomer refused: a slow-loris crowd then only ever
//! delays itself, while a client that sends its hello at once always gets in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct HandshakeGate {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// Ids grow with arrival, so the first entry is the oldest.
    pending: BTreeMap<u64, CancellationToken>,
}

/// A place in the gate; `evicted()` fires if an arrival pushed this one out.
#[derive(Debug)]
pub struct HandshakeTicket {
    gate: Arc<HandshakeGate>,
    id: u64,
    token: CancellationToken,
}

impl HandshakeGate {
    /// Enters the gate; returns the ticket and how many older tickets were evicted.
    pub fn enter(self: &Arc<Self>, max: usize) -> (HandshakeTicket, usize) {
        let token = CancellationToken::new();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let id = inner.next_id;
        inner.next_id += 1;
        inner.pending.insert(id, token.clone());
        let mut evicted = 0;
        while inner.pending.len() > max.max(1) {
            if let Some((_, oldest)) = inner.pending.pop_first() {
                oldest.cancel();
                evicted += 1;
            }
        }
        (
            HandshakeTicket {
                gate: Arc::clone(self),
                id,
                token,
            },
            evicted,
        )
    }

    pub fn pending(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .len()
    }
}

impl HandshakeTicket {
    pub async fn evicted(&self) {
        self.token.cancelled().await;
    }
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        let mut inner = self
            .gate
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner.pending.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_is_evicted_when_full() {
        let gate = Arc::new(HandshakeGate::default());
        let (a, _) = gate.enter(2);
        let (b, _) = gate.enter(2);
        let (c, evicted) = gate.enter(2);
        assert_eq!(evicted, 1);
        assert!(a.token.is_cancelled());
        assert!(!b.token.is_cancelled() && !c.token.is_cancelled());
        assert_eq!(gate.pending(), 2);
        drop((b, c));
        assert_eq!(gate.pending(), 0);
        drop(a);
        assert_eq!(gate.pending(), 0);
    }
}
