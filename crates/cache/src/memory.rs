//! The in-process store: a map bounded in entries and bytes, with TTL and
//! least-recently-used eviction. It is the whole cache when no Redis is
//! configured, and the tier in front of Redis when one is (safe because a
//! key names every version its value was computed from).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

struct Entry {
    value: Arc<Vec<u8>>,
    expires_at: Instant,
    /// Position in `Inner::order`; larger is more recently used.
    tick: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// tick → key, oldest first: the eviction order.
    order: BTreeMap<u64, String>,
    next_tick: u64,
    /// The sum of the values' lengths.
    bytes: usize,
}

impl Inner {
    fn touch(&mut self, key: &str) {
        let tick = self.next_tick;
        if let Some(entry) = self.entries.get_mut(key) {
            self.next_tick += 1;
            if let Some(name) = self.order.remove(&entry.tick) {
                self.order.insert(tick, name);
            }
            entry.tick = tick;
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.tick);
            self.bytes -= entry.value.len();
        }
    }

    fn evict_oldest(&mut self) -> bool {
        match self.order.pop_first() {
            Some((_, oldest)) => {
                if let Some(entry) = self.entries.remove(&oldest) {
                    self.bytes -= entry.value.len();
                }
                true
            }
            None => false,
        }
    }
}

/// A bounded in-process cache: at most `capacity` entries and `max_bytes`
/// of values, each for `ttl`.
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
    capacity: usize,
    max_bytes: usize,
    ttl: Duration,
}

impl MemoryStore {
    pub(crate) fn new(capacity: usize, max_bytes: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity,
            max_bytes,
            ttl,
        }
    }

    /// Values above this size are not kept, so that one large value (a
    /// board of thousands of agents) cannot push out everything else.
    fn largest_kept(&self) -> usize {
        self.max_bytes / 8
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every update is
        // completed before the guard is released.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live value under `key`, if any; marks it recently used.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let mut inner = self.lock();
        let now = Instant::now();
        let (value, expired) = match inner.entries.get(key) {
            None => return None,
            Some(entry) => (entry.value.clone(), entry.expires_at <= now),
        };
        if expired {
            inner.remove(key);
            return None;
        }
        inner.touch(key);
        Some(value)
    }

    /// Stores `value` under `key` for the TTL, evicting the least recently
    /// used entries past the capacity or the byte bound. A value above an
    /// eighth of the byte bound is not kept.
    pub(crate) fn put(&self, key: &str, value: Arc<Vec<u8>>) {
        let mut inner = self.lock();
        inner.remove(key);
        if value.len() > self.largest_kept() {
            return;
        }
        let tick = inner.next_tick;
        inner.next_tick += 1;
        inner.order.insert(tick, key.to_owned());
        inner.bytes += value.len();
        inner.entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at: Instant::now() + self.ttl,
                tick,
            },
        );
        while (inner.entries.len() > self.capacity || inner.bytes > self.max_bytes)
            && inner.evict_oldest()
        {}
    }

    /// How many entries are held (expired ones included until touched).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Arc<Vec<u8>> {
        Arc::new(s.as_bytes().to_vec())
    }

    #[test]
    fn evicts_least_recently_used() {
        let store = MemoryStore::new(2, 1 << 20, Duration::from_secs(60));
        store.put("a", v("1"));
        store.put("b", v("2"));
        assert_eq!(store.get("a"), Some(v("1"))); // a is now newer than b
        store.put("c", v("3"));
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("b"), None);
        assert_eq!(store.get("a"), Some(v("1")));
        assert_eq!(store.get("c"), Some(v("3")));
    }

    #[test]
    fn overwrite_keeps_one_entry() {
        let store = MemoryStore::new(2, 1 << 20, Duration::from_secs(60));
        store.put("a", v("1"));
        store.put("a", v("2"));
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("a"), Some(v("2")));
    }

    #[test]
    fn bytes_are_bounded_and_large_values_not_kept() {
        let store = MemoryStore::new(100, 80, Duration::from_secs(60));
        for key in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            store.put(key, Arc::new(vec![0; 10]));
        }
        // 90 bytes is over the bound of 80: the oldest entry went.
        assert_eq!(store.get("a"), None);
        assert!(store.get("b").is_some() && store.get("i").is_some());
        assert_eq!((store.len(), store.lock().bytes), (8, 80));
        // 11 bytes is over an eighth of the bound: not kept, nothing evicted.
        store.put("large", Arc::new(vec![0; 11]));
        assert_eq!(store.get("large"), None);
        assert_eq!(store.len(), 8);
    }

    #[test]
    fn expired_entries_are_gone() {
        let store = MemoryStore::new(2, 1 << 20, Duration::ZERO);
        store.put("a", v("1"));
        assert_eq!(store.get("a"), None);
        assert_eq!(store.len(), 0);
    }
}
