//! Per-route concurrency. A route first uses its reserved slots, which nobody else can take,
//! then competes for the shared pool. The admin route reserves its budget, so a flood that
//! fills the pool and the public route's cap still leaves the admin's slots free.
//!
//! Counts live here, keyed by route name, not in the (reloadable) route table: connections
//! admitted under an old config keep counting against the new limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone, Copy)]
pub struct RouteLimits {
    pub max_connections: usize,
    pub reserved: usize,
}

#[derive(Debug, Default)]
pub struct Admission {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pool_used: usize,
    routes: HashMap<Arc<str>, Counts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    active: usize,
    reserved_used: usize,
}

/// One admitted connection on a route.
#[derive(Debug)]
pub struct RoutePermit {
    admission: Arc<Admission>,
    /// Shared with the table's key: a permit allocates nothing (idle connections hold one).
    route: Arc<str>,
    reserved: bool,
}

impl Admission {
    pub fn acquire(
        self: &Arc<Self>,
        route: &str,
        limits: RouteLimits,
        pool_max: usize,
    ) -> Option<RoutePermit> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let pool_used = inner.pool_used;
        let key = match inner.routes.get_key_value(route) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(route),
        };
        let counts = inner.routes.entry(Arc::clone(&key)).or_default();
        if counts.active >= limits.max_connections {
            return None;
        }
        let reserved = counts.reserved_used < limits.reserved;
        if reserved {
            counts.reserved_used += 1;
        } else if pool_used >= pool_max {
            return None;
        }
        counts.active += 1;
        if !reserved {
            inner.pool_used += 1;
        }
        Some(RoutePermit {
            admission: Arc::clone(self),
            route: key,
            reserved,
        })
    }

    pub fn active(&self, route: &str) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.routes.get(route).map_or(0, |c| c.active)
    }
}

impl Drop for RoutePermit {
    fn drop(&mut self) {
        let mut inner = self
            .admission
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.reserved {
            inner.pool_used = inner.pool_used.saturating_sub(1);
        }
        if let Some(c) = inner.routes.get_mut(&*self.route) {
            c.active = c.active.saturating_sub(1);
            if self.reserved {
                c.reserved_used = c.reserved_used.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_slots_survive_a_full_pool() {
        let a = Arc::new(Admission::default());
        let public = RouteLimits {
            max_connections: 100,
            reserved: 0,
        };
        let admin = RouteLimits {
            max_connections: 3,
            reserved: 2,
        };
        let flood: Vec<_> = (0..10)
            .map(|_| a.acquire("public", public, 10).expect("pool"))
            .collect();
        assert!(a.acquire("public", public, 10).is_none(), "pool full");
        let admins: Vec<_> = (0..2)
            .map(|_| a.acquire("admin", admin, 10).expect("reserved"))
            .collect();
        assert!(
            a.acquire("admin", admin, 10).is_none(),
            "reserve used and pool full"
        );
        drop(flood);
        let third = a.acquire("admin", admin, 10).expect("pool again");
        assert!(a.acquire("admin", admin, 10).is_none(), "route cap of 3");
        assert_eq!(a.active("admin"), 3);
        drop((admins, third));
        assert_eq!(a.active("admin"), 0);
        assert_eq!(a.active("public"), 0);
    }
}
