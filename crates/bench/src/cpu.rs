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
        let service = ProcessStat::parse(&read_stat(service_pid)?)?.own;
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

impl std::ops::Add for Used {
    type Output = Used;

    /// Both steps' time; PostgreSQL's only where both have it.
    fn add(self, other: Used) -> Used {
        Used {
            machine: self.machine + other.machine,
            service: self.service + other.service,
            postgres: self.postgres.zip(other.postgres).map(|(a, b)| a + b),
        }
    }
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

/// What `ProcessStat::parse` reads of a `/proc/<pid>/stat` line.
struct ProcessStat<'a> {
    /// The command name.
    name: &'a str,
    /// The parent's pid.
    parent: u32,
    /// Its own user and system ticks.
    own: u64,
    /// What it collected from children it waited for.
    children: u64,
}

impl<'a> ProcessStat<'a> {
    /// Parses `/proc/<pid>/stat`: the name in parentheses may hold spaces,
    /// so fields are counted after the last `)`; the parent is field 4,
    /// utime, stime, cutime and cstime are fields 14 to 17.
    fn parse(stat: &'a str) -> Option<Self> {
        let (open, close) = (stat.find('(')?, stat.rfind(')')?);
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // The fields start at field 3 (the state), so field n is at index n - 3.
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Self {
            name: stat.get(open + 1..close)?,
            parent: u32::try_from(field(4)?).ok()?,
            own: field(14)? + field(15)?,
            children: field(16)? + field(17)?,
        })
    }
}

fn read_stat(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// Ticks of every process named `postgres`, plus the children's ticks of
/// the postmaster (the one whose parent is not itself a `postgres`: backends
/// and workers are its children), where backends that exited are counted;
/// `None` if there is no such process.
fn postgres_ticks() -> Option<u64> {
    let stats: Vec<(u32, String)> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect();
    let processes: Vec<(u32, ProcessStat<'_>)> = stats
        .iter()
        .filter_map(|(pid, stat)| Some((*pid, ProcessStat::parse(stat)?)))
        .filter(|(_, process)| process.name == "postgres")
        .collect();
    let is_postgres = |pid: u32| processes.iter().any(|(p, _)| *p == pid);
    let total = processes
        .iter()
        .map(|(_, p)| p.own + if is_postgres(p.parent) { 0 } else { p.children })
        .sum();
    (!processes.is_empty()).then_some(total)
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
        let ticks = ProcessStat::parse(stat).expect("parsed");
        assert_eq!(ticks.own, 1234 + 56);
        assert_eq!(ticks.children, 7 + 8);
        assert_eq!(Some(ticks.name), Some("tokio rt) x"));
    }

    /// Steal ticks of all CPUs so far: time the hypervisor gave to others.
    fn steal_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/stat").expect("/proc is readable here");
        let line = stat
            .lines()
            .find(|l| l.starts_with("cpu "))
            .expect("a cpu line");
        // cpu user nice system idle iowait irq softirq steal
        line.split_whitespace()
            .nth(8)
            .and_then(|f| f.parse().ok())
            .expect("a steal count")
    }

    #[test]
    fn the_running_process_is_read() {
        let steal_before = steal_ticks();
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
        // The machine's count includes this process, but it is sampled a
        // tick at a time per CPU, and a tick the hypervisor stole counts as
        // steal even while this process held the CPU (a shared VM here
        // counted 30 ms busy against 50 ms for the process).
        let stolen = ticks(steal_ticks().saturating_sub(steal_before));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        assert!(
            used.machine + stolen + ticks(cpus) >= used.service,
            "{used:?}, {stolen:?} stolen"
        );
    }
}
