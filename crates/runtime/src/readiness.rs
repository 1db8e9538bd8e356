//! Readiness for plain-HTTP probes: `GET /readyz` and `GET /livez` on the
//! metrics endpoint (`KPI_METRICS_ADDR`).
//!
//! The kubelet's `grpc` probes speak plain text only, so with `KPI_TLS_*` on
//! they fail against the gRPC port. The metrics endpoint stays plain HTTP, and
//! these two paths give probes what the gRPC health service tells: ready
//! while every server of the process serves, not ready from the moment one
//! starts draining (so the pod leaves its Service before the listener closes).
//!
//! A [`Readiness`] counts servers and how many of them are not serving;
//! [`crate::server::serve`] holds a [`Registration`] on the process's one
//! ([`Readiness::process`]) for as long as it runs.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Servers registered, and how many of them are starting or draining.
#[derive(Debug, Default)]
struct Counts {
    servers: usize,
    not_serving: usize,
}

/// Whether the servers of a process are serving; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    counts: Arc<Mutex<Counts>>,
}

impl Readiness {
    /// A readiness with no server yet (not ready).
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's readiness: what every [`crate::server::serve`] marks
    /// and the metrics endpoint answers `/readyz` from.
    pub fn process() -> &'static Readiness {
        static PROCESS: OnceLock<Readiness> = OnceLock::new();
        PROCESS.get_or_init(Readiness::new)
    }

    /// Ready when at least one server is registered and every one serves.
    pub fn is_ready(&self) -> bool {
        let counts = self.lock();
        counts.servers > 0 && counts.not_serving == 0
    }

    /// Counts a server, not serving yet, until the registration is dropped.
    pub fn register(&self) -> Registration {
        let mut counts = self.lock();
        counts.servers += 1;
        counts.not_serving += 1;
        Registration {
            readiness: self.clone(),
            serving: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are always consistent between statements: a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, was_serving: bool, serving: bool) {
        match (was_serving, serving) {
            (false, true) => self.lock().not_serving -= 1,
            (true, false) => self.lock().not_serving += 1,
            _ => {}
        }
    }
}

/// One server's place in a [`Readiness`]; dropping it removes the server.
#[derive(Debug)]
pub struct Registration {
    readiness: Readiness,
    serving: bool,
}

impl Registration {
    /// The server serves.
    pub fn serving(&mut self) {
        self.readiness.set(self.serving, true);
        self.serving = true;
    }

    /// The server drains: it still answers, but takes no new work.
    pub fn draining(&mut self) {
        self.readiness.set(self.serving, false);
        self.serving = false;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut counts = self.readiness.lock();
        counts.servers -= 1;
        if !self.serving {
            counts.not_serving -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_registered_server_serves() {
        let readiness = Readiness::new();
        assert!(!readiness.is_ready(), "no server yet");
        let mut first = readiness.register();
        assert!(!readiness.is_ready(), "starting");
        first.serving();
        first.serving();
        assert!(readiness.is_ready());
        let mut second = readiness.register();
        assert!(!readiness.is_ready(), "the second is starting");
        second.serving();
        assert!(readiness.is_ready());
        second.draining();
        assert!(!readiness.is_ready(), "one drains");
        drop(second);
        assert!(readiness.is_ready(), "the drained one is gone");
        first.draining();
        first.draining();
        assert!(!readiness.is_ready());
        drop(first);
        assert!(!readiness.is_ready(), "no server left");
        let third = readiness.register();
        drop(third);
        assert!(!readiness.is_ready());
    }
}
