//! CPU time spent during a measured step, read from `/proc` (Linux).
//!
//! `ingest` reports where the CPU went: the whole machine (`/proc/stat`),
//! the data-ingestion process, and the local PostgreSQL server (every
//! process named `postgres`, plus what its postmaster collected from
//! backends that exited in between). The rates say how fast; these say
//! which process does the work, and their ratio to the `COPY` baseline's,
//! both measured in the same run, is less at the mercy of a shared machine
//! whose speed drifts from run to run. Off Linux, or with the database on
//! another host, the figures it cannot read are left out.

use std::time::Duration;

/// `/proc` counts CPU time in clock ticks of 1/100 s (`USER_HZ`, which the
/// kernel fixes at 100 for user space on every mainstream architecture).
const TICKS_PER_SECOND: u64 = 100;

/// CPU ticks used so far, by the whole machine and by some processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Busy ticks of all CPUs (everything but idle, iowait and steal).
    pub machine: u64,
    /// Ticks of the measured service process.
    pub service: u64,
    /// Ticks of the local PostgreSQL server's processes, if any were found.
    pub postgres: Option<u64>,
}

impl Sample {
    /// Reads the counters now; `None` where `/proc` cannot be read.
    pub(crate) fn take(service_pid: u32) -> Option<Self> {
        let machine = machine_busy(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let service = process_ticks(&read_stat(service_pid)?)?.own;
        Some(Self {
            machine,
            service,
            postgres: postgres_ticks(),
        })
    }

    /// The CPU time used between `earlier` and this sample.
    pub(crate) fn since(&self, earlier: &Self) -> Used {
        Used {
            machine: ticks(self.machine.saturating_sub(earlier.machine)),
            service: ticks(self.service.saturating_sub(earlier.service)),
            postgres: self
                .postgres
                .zip(earlier.postgres)
                .map(|(now, then)| ticks(now.saturating_sub(then))),
        }
    }
}

/// CPU time used during a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Used {
    pub machine: Duration,
    pub service: Duration,
    pub postgres: Option<Duration>,
}

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 1000 / TICKS_PER_SECOND)
}

/// Busy ticks from the `cpu` line of `/proc/stat`: user, nice, system, irq
/// and softirq (idle, iowait and steal, the time the hypervisor gave to
/// others, left out; guest time is already in user).
fn machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Some(at(0) + at(1) + at(2) + at(5) + at(6))
}

/// A process's ticks from its `/proc/<pid>/stat` line.
struct ProcessTicks {
    /// Its own user and system time.
    own: u64,
    /// What it collected from children it waited for.
    children: u64,
}

fn read_stat(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// Parses `/proc/<pid>/stat`: the name in parentheses may hold spaces, so
/// fields are counted after the last `)`; utime, stime, cutime and cstime
/// are fields 14 to 17.
fn process_ticks(stat: &str) -> Option<ProcessTicks> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state), so field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcessTicks {
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// The command name in `/proc/<pid>/stat`.
fn process_name(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// Ticks of every process named `postgres`, plus the children's ticks of
/// the postmaster (the one whose parent is not itself a `postgres`), where
/// backends that exited are counted; `None` if there is no such process.
fn postgres_ticks() -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Some(stat) = read_stat(pid) else { continue };
        if process_name(&stat) != Some("postgres") {
            continue;
        }
        let Some(ticks) = process_ticks(&stat) else {
            continue;
        };
        found = true;
        total += ticks.own;
        if is_postmaster(&stat) {
            total += ticks.children;
        }
    }
    found.then_some(total)
}

/// Whether this `postgres` process is a postmaster: its parent is not a
/// `postgres` process (backends and workers are the postmaster's children).
fn is_postmaster(stat: &str) -> bool {
    let parent = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse::<u32>().ok());
    let parent_stat = parent.and_then(read_stat);
    parent_stat.as_deref().and_then(process_name) != Some("postgres")
}

/// Microseconds of `cpu` per item.
pub(crate) fn micros_per(cpu: Duration, items: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / items.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_busy_leaves_idle_and_iowait_out() {
        let stat = "cpu  100 5 20 1000 30 2 3 4 0 0\ncpu0 50 0 10 500 15 1 1 2 0 0\n";
        assert_eq!(machine_busy(stat), Some(100 + 5 + 20 + 2 + 3));
        assert_eq!(machine_busy("intr 1 2 3\n"), None);
    }

    #[test]
    fn process_fields_are_counted_after_the_name() {
        // A name with a space and a parenthesis, as `comm` may hold.
        let stat = "4242 (tokio rt) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 56 7 8 20 0 9 0 100 200 300";
        let ticks = process_ticks(stat).expect("parsed");
        assert_eq!(ticks.own, 1234 + 56);
        assert_eq!(ticks.children, 7 + 8);
        assert_eq!(process_name(stat), Some("tokio rt) x"));
    }

    #[test]
    fn the_running_process_is_read() {
        let before = Sample::take(std::process::id()).expect("/proc is readable here");
        // Spin until this process has used at least 50 ms of CPU.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut x = 0_u64;
        let used = loop {
            for i in 0..1_000_000_u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            let now = Sample::take(std::process::id()).expect("/proc is readable here");
            let used = now.since(&before);
            if used.service >= Duration::from_millis(50) || std::time::Instant::now() > deadline {
                break used;
            }
        };
        assert!(used.service >= Duration::from_millis(50), "{used:?}");
        // The machine's count includes this process (one tick of slack: the
        // two are sampled a moment apart).
        assert!(used.machine + ticks(1) >= used.service, "{used:?}");
    }
}
