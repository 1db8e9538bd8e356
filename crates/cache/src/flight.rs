//! Per-key single flight: the first caller of a key becomes its leader and does
//! the work; concurrent callers of the same key wait for the leader's outcome.
//!
//! The map only holds keys whose work is under way: the leader's guard removes
//! its entry when it is dropped, whether the work succeeded, failed or was
//! cancelled, so the map never grows. A cancelled leader closes its channel
//! without an outcome and its followers try again (one becomes the new leader).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// The outcome a leader shares: the value, or its (type-erased) error.
pub(crate) type Outcome = Result<Arc<Vec<u8>>, Arc<dyn Any + Send + Sync>>;

type Slot = watch::Receiver<Option<Outcome>>;

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, (u64, Slot)>>,
    next_id: Mutex<u64>,
}

/// What a caller of [`Flights::join`] is to do.
pub(crate) enum Role<'a> {
    /// Do the work, then [`Leader::publish`] its outcome.
    Leader(Leader<'a>),
    /// Wait for the leader's outcome on this channel.
    Follower(Slot),
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, Slot)>> {
        // Each update of the map completes before the guard is released.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the flight for `key`, starting one if none is under way.
    pub(crate) fn join(&self, key: &str) -> Role<'_> {
        let mut map = self.lock();
        if let Some((_, slot)) = map.get(key) {
            return Role::Follower(slot.clone());
        }
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
            *next = next.wrapping_add(1);
            *next
        };
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), (id, rx));
        Role::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            id,
            tx,
        })
    }

    /// How many flights are under way.
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

/// The caller doing the work for a key; dropping it ends the flight.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    id: u64,
    tx: watch::Sender<Option<Outcome>>,
}

impl Leader<'_> {
    /// Hands `outcome` to every follower, present and joining until this
    /// leader is dropped.
    pub(crate) fn publish(&self, outcome: Outcome) {
        self.tx.send_replace(Some(outcome));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut map = self.flights.lock();
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

/// Waits for the leader behind `slot`: its outcome, or `None` if it was
/// dropped without one (cancelled).
pub(crate) async fn wait(mut slot: Slot) -> Option<Outcome> {
    match slot.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone(),
        Err(_) => None,
    }
}
