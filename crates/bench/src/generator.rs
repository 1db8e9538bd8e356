//! A deterministic feed of realistic ticket lifecycle events.
//!
//! Tickets are created over the days of one month (continuing into the
//! following ones if more events are asked for) from a pool of customers,
//! worked by a pool of 200 agents in 10 teams: created, assigned, first
//! response, a few customer and agent replies, resolved, and about one in ten
//! reopened and resolved again.
//!
//! The feed is ordered by event time across tickets, as a real one would
//! interleave them. It is generated lazily one day at a time: only the
//! pending events of the tickets created so far are held (a window of a few
//! days), never the whole feed.
//!
//! Queued events wait in a bucket per day and a day is sorted once, when it
//! is complete. A binary heap over the whole window did the same, but its
//! pops (a few hundred thousand entries, a cache miss per level) were the
//! largest piece of the benchmark client's CPU, which shares the machine
//! with the server it measures.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use kpi_domain::events::{Channel, Event, Payload, TicketEvent, TicketEventType};

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400 * 1_000_000;
/// Microseconds in a second.
const SECOND_MICROS: i64 = 1_000_000;
/// Days the tickets are spread over.
const DAYS_PER_MONTH: u64 = 30;
/// The agent pool.
const AGENTS: u64 = 200;
/// Agents per team.
const AGENTS_PER_TEAM: u64 = 20;
/// Ticket categories.
const CATEGORIES: [&str; 8] = [
    "billing",
    "delivery",
    "returns",
    "technical",
    "account",
    "warranty",
    "installation",
    "other",
];
/// 2025-03-01T00:00:00Z, the first day of the month, in Unix seconds.
const MONTH_START_SECONDS: i64 = 1_740_787_200;

/// What the feed looks like.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedConfig {
    /// Events produced in all.
    pub(crate) events: u64,
    /// Tickets created over the month.
    pub(crate) tickets: u64,
    /// The seed: the same seed gives the same feed.
    pub(crate) seed: u64,
}

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = high.saturating_sub(low).saturating_add(1).max(1);
        let span = u64::try_from(span).unwrap_or(1);
        let offset = self.next_u64() % span;
        low.saturating_add(i64::try_from(offset).unwrap_or(0))
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration in `low..=high` seconds, with random milliseconds, in µs.
    fn seconds(&mut self, low: i64, high: i64) -> i64 {
        self.range(low, high) * SECOND_MICROS + self.range(0, 999) * 1_000
    }
}

/// One generated event waiting for its day to be complete.
struct Pending {
    at: i64,
    /// The order of generation: ties in time keep it.
    seq: u64,
    /// Boxed: sorting moves the entries, and a pointer is cheaper to move
    /// than an event.
    event: Box<Event>,
}

/// The feed: an iterator of exactly [`FeedConfig::events`] domain events,
/// ordered by `occurred_at`.
pub(crate) struct Feed {
    config: FeedConfig,
    tickets_per_day: u64,
    customers: u64,
    next_day: u64,
    emitted: u64,
    seq: u64,
    /// Queued events by the day they occur on; the first is `next_day`.
    days: VecDeque<Vec<Pending>>,
    /// The events of the last complete day not yet emitted, in order.
    ready: std::vec::IntoIter<Pending>,
}

impl Feed {
    /// A new feed; the same config always gives the same events.
    pub(crate) fn new(config: FeedConfig) -> Feed {
        let tickets = config.tickets.max(1);
        Feed {
            config,
            tickets_per_day: tickets.div_ceil(DAYS_PER_MONTH),
            // About two and a half tickets per customer over the month, so
            // customers come back (first-contact resolution has groups).
            customers: (tickets * 2 / 5).max(1),
            next_day: 0,
            emitted: 0,
            seq: 0,
            days: VecDeque::new(),
            ready: Vec::new().into_iter(),
        }
    }

    /// The start of `day` (0-based from the month start), in µs.
    fn day_start(day: u64) -> i64 {
        let day = i64::try_from(day).unwrap_or(i64::MAX / DAY_MICROS);
        MONTH_START_SECONDS * SECOND_MICROS + day.saturating_mul(DAY_MICROS)
    }

    /// Generates the tickets created on the next day and returns that day's
    /// events in time order. The day is complete then: every ticket created
    /// later starts on a later day.
    fn complete_next_day(&mut self) -> Vec<Pending> {
        let day = self.next_day;
        let first = day * self.tickets_per_day;
        for ticket in first..first + self.tickets_per_day {
            self.generate_ticket(day, ticket);
        }
        self.next_day += 1;
        let mut events = self.days.pop_front().unwrap_or_default();
        events.sort_unstable_by_key(|p| (p.at, p.seq));
        events
    }

    /// Queues an event on the day it occurs (never before `next_day`: a
    /// ticket's events follow its creation).
    fn queue(&mut self, at: i64, event: Event) {
        let offset = (at - Self::day_start(self.next_day)).max(0) / DAY_MICROS;
        let offset = usize::try_from(offset).unwrap_or(0);
        if self.days.len() <= offset {
            self.days.resize_with(offset + 1, Vec::new);
        }
        self.seq += 1;
        self.days[offset].push(Pending {
            at,
            seq: self.seq,
            event: Box::new(event),
        });
    }

    /// Queues the lifecycle of one ticket.
    fn generate_ticket(&mut self, day: u64, ticket: u64) {
        let mut rng = Rng::new(self.config.seed ^ ticket.wrapping_mul(0xA24B_AED4_963E_E407));
        // Mostly during opening hours, 06:00–22:00.
        let created = Self::day_start(day) + rng.seconds(6 * 3600, 22 * 3600 - 1);
        let channel = match rng.below(100) {
            0..40 => Channel::Chat,
            40..70 => Channel::Phone,
            70..95 => Channel::Email,
            _ => Channel::Social,
        };
        let category = CATEGORIES[usize::try_from(rng.below(8)).unwrap_or(0)];
        let priority = match rng.below(100) {
            0..5 => "p1",
            5..25 => "p2",
            25..80 => "p3",
            _ => "p4",
        };
        let customer = rng.below(self.customers);
        let segment = if rng.chance(10) { "vip" } else { "standard" };
        let complaint = rng.chance(5);
        let agent = rng.below(AGENTS);
        let agent_id = format!("agent-{agent:03}");
        let team_id = format!("team-{:02}", agent / AGENTS_PER_TEAM);
        let ticket_id = format!("tk-{ticket:07}");

        let mut lifecycle = Lifecycle {
            ticket_id: &ticket_id,
            number: 0,
            ticket,
            out: Vec::with_capacity(10),
        };
        let base = lifecycle.event(TicketEventType::Created, None, None, 0);
        lifecycle.push(
            created,
            TicketEvent {
                channel: Some(channel),
                category: Some(category.to_owned()),
                priority: Some(priority.to_owned()),
                customer_id: Some(format!("cust-{customer:06}")),
                customer_segment: Some(segment.to_owned()),
                is_complaint: complaint,
                ..base
            },
        );
        let agent_event = |l: &Lifecycle<'_>, t: TicketEventType, handle: u32| {
            l.event(t, Some(&agent_id), Some(&team_id), handle)
        };
        // Phone and chat are picked up at once, email and social later.
        let pickup = match channel {
            Channel::Phone | Channel::Chat => rng.seconds(5, 300),
            _ => rng.seconds(60, 4 * 3600),
        };
        let mut at = created + pickup;
        let e = agent_event(&lifecycle, TicketEventType::Assigned, 0);
        lifecycle.push(at, e);
        at += rng.seconds(10, 2 * 3600);
        let handle = handle_seconds(&mut rng);
        let e = agent_event(&lifecycle, TicketEventType::FirstResponse, handle);
        lifecycle.push(at, e);
        for _ in 0..rng.below(3) {
            at += rng.seconds(120, 8 * 3600);
            let e = lifecycle.event(TicketEventType::CustomerReply, None, None, 0);
            lifecycle.push(at, e);
            at += rng.seconds(60, 4 * 3600);
            let handle = handle_seconds(&mut rng);
            let e = agent_event(&lifecycle, TicketEventType::AgentReply, handle);
            lifecycle.push(at, e);
        }
        at += rng.seconds(60, 12 * 3600);
        let handle = handle_seconds(&mut rng);
        let e = agent_event(&lifecycle, TicketEventType::Resolved, handle);
        lifecycle.push(at, e);
        if rng.chance(10) {
            at += rng.seconds(3600, 3 * 86_400);
            let e = lifecycle.event(TicketEventType::Reopened, None, None, 0);
            lifecycle.push(at, e);
            if rng.chance(50) {
                at += rng.seconds(60, 4 * 3600);
                let handle = handle_seconds(&mut rng);
                let e = agent_event(&lifecycle, TicketEventType::AgentReply, handle);
                lifecycle.push(at, e);
            }
            at += rng.seconds(600, 24 * 3600);
            let handle = handle_seconds(&mut rng);
            let e = agent_event(&lifecycle, TicketEventType::Resolved, handle);
            lifecycle.push(at, e);
        }
        for (at, event) in lifecycle.out {
            self.queue(at, event);
        }
    }
}

/// Agent work time of one reply or resolution: 1 to 15 minutes.
fn handle_seconds(rng: &mut Rng) -> u32 {
    u32::try_from(rng.range(60, 900)).unwrap_or(60)
}

/// The events of one ticket being built.
struct Lifecycle<'a> {
    ticket_id: &'a str,
    ticket: u64,
    number: u32,
    out: Vec<(i64, Event)>,
}

impl Lifecycle<'_> {
    /// A ticket event with no creation details.
    fn event(
        &self,
        event_type: TicketEventType,
        agent_id: Option<&str>,
        team_id: Option<&str>,
        handle_seconds: u32,
    ) -> TicketEvent {
        TicketEvent {
            agent_id: agent_id.map(str::to_owned),
            team_id: team_id.map(str::to_owned),
            handle_seconds,
            ..TicketEvent::new(self.ticket_id, event_type)
        }
    }

    /// Adds the ticket's next event, at `at` µs.
    fn push(&mut self, at: i64, ticket: TicketEvent) {
        let occurred_at = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::microseconds(at);
        self.out.push((
            at,
            Event {
                event_id: format!("ev-{:07}-{:02}", self.ticket, self.number),
                occurred_at,
                payload: Payload::Ticket(ticket),
            },
        ));
        self.number += 1;
    }
}

impl Iterator for Feed {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.emitted >= self.config.events {
            return None;
        }
        loop {
            if let Some(pending) = self.ready.next() {
                self.emitted += 1;
                return Some(*pending.event);
            }
            self.ready = self.complete_next_day().into_iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.config.events - self.emitted).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(events: u64) -> FeedConfig {
        FeedConfig {
            events,
            tickets: events / 6,
            seed: 7,
        }
    }

    #[test]
    fn exact_count_ordered_and_deterministic() {
        let a: Vec<Event> = Feed::new(config(30_000)).collect();
        let b: Vec<Event> = Feed::new(config(30_000)).collect();
        assert_eq!(a.len(), 30_000);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
        let ids: std::collections::HashSet<&str> = a.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), a.len());
        // About one month.
        let span = a[a.len() - 1].occurred_at - a[0].occurred_at;
        assert!(span.num_days() >= 25 && span.num_days() <= 33, "{span}");
    }

    #[test]
    fn lifecycles_are_realistic() {
        let events: Vec<Event> = Feed::new(config(12_000)).collect();
        let count = |t: TicketEventType| {
            events
                .iter()
                .filter(|e| matches!(&e.payload, Payload::Ticket(p) if p.event_type == t))
                .count()
        };
        let created = count(TicketEventType::Created);
        let reopened = count(TicketEventType::Reopened);
        assert!(created > 1_500);
        assert!(reopened * 100 > created * 5 && reopened * 100 < created * 15);
        assert!(count(TicketEventType::Resolved) > created);
    }
}
