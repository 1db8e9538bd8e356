//! Request validation: every problem of a request is collected with its
//! field path and answered at once as `INVALID_ARGUMENT` with
//! `google.rpc.BadRequest` field violations.

use std::ops::Range;

use kpi_domain::period::{Period, PeriodKind};
use kpi_proto::common as cpb;
use kpi_runtime::names;
use tonic::Status;

/// Most facts listed per indicator by ExplainScorecard.
pub const MAX_FACTS_PER_INDICATOR: i32 = 200;

/// What a scorecard is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRef {
    /// An agent id.
    Agent(String),
    /// A team id.
    Team(String),
}

/// Collects `(field, description)` problems.
#[derive(Debug, Default)]
pub struct Checks(Vec<(String, String)>);

impl Checks {
    /// Records a problem with `field`.
    pub fn push(&mut self, field: &str, description: impl Into<String>) {
        self.0.push((field.to_string(), description.into()));
    }

    /// Records the violation of a status made by a shared helper.
    fn absorb<T>(&mut self, result: Result<T, Status>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(status) => {
                let found = kpi_runtime::status::field_violations(&status);
                if found.is_empty() {
                    self.0.push((String::new(), status.message().to_string()));
                }
                self.0.extend(found);
                None
            }
        }
    }

    /// The tenant of `parent`, `tenants/{tenant}`.
    pub fn tenant(&mut self, parent: &str) -> Option<String> {
        self.absorb(names::parse_parent("parent", parent))
    }

    /// A page size (0 → 50, at most 500) and the offset of a page token.
    pub fn page(&mut self, size: i32, token: &str) -> Option<(usize, usize)> {
        let size = self.absorb(names::page_size("page_size", size, 50, 500))?;
        let offset = self.absorb(names::decode_page_token("page_token", token))?;
        if offset.is_empty() {
            return Some((size as usize, 0));
        }
        match offset.parse::<usize>() {
            Ok(n) => Some((size as usize, n)),
            Err(_) => {
                self.push("page_token", "not a token of this list");
                None
            }
        }
    }

    /// A subject: an agent or a team with an id.
    pub fn subject(&mut self, subject: Option<&cpb::Subject>) -> Option<SubjectRef> {
        let Some(s) = subject else {
            self.push("subject", "a subject is required");
            return None;
        };
        let id_ok = self.id("subject.id", &s.id);
        match cpb::SubjectKind::try_from(s.kind) {
            Ok(cpb::SubjectKind::Agent) => id_ok.then(|| SubjectRef::Agent(s.id.clone())),
            Ok(cpb::SubjectKind::Team) => id_ok.then(|| SubjectRef::Team(s.id.clone())),
            Ok(cpb::SubjectKind::Tenant) => {
                self.push(
                    "subject.kind",
                    "scorecards are for an agent or a team: SUBJECT_KIND_AGENT or SUBJECT_KIND_TEAM",
                );
                None
            }
            _ => {
                self.push(
                    "subject.kind",
                    "a subject kind is required: SUBJECT_KIND_AGENT or SUBJECT_KIND_TEAM",
                );
                None
            }
        }
    }

    /// A non-empty agent or team id without `/`.
    pub fn id(&mut self, field: &str, id: &str) -> bool {
        if id.is_empty() {
            self.push(field, "an id is required");
            false
        } else if id.len() > 128 || id.contains('/') || id.chars().any(char::is_control) {
            self.push(field, "must be at most 128 characters, without '/'");
            false
        } else {
            true
        }
    }

    /// An optional agent or team id.
    pub fn optional_id(&mut self, field: &str, id: &str) {
        if !id.is_empty() {
            self.id(field, id);
        }
    }

    /// A period: its kind, date and (custom) end date.
    pub fn period(&mut self, period: Option<&cpb::Period>) -> Option<Period> {
        let Some(p) = period else {
            self.push("period", "a period is required");
            return None;
        };
        let kind = match cpb::PeriodKind::try_from(p.kind) {
            Ok(cpb::PeriodKind::Day) => PeriodKind::Day,
            Ok(cpb::PeriodKind::Week) => PeriodKind::Week,
            Ok(cpb::PeriodKind::Month) => PeriodKind::Month,
            Ok(cpb::PeriodKind::Quarter) => PeriodKind::Quarter,
            Ok(cpb::PeriodKind::Custom) => PeriodKind::Custom,
            _ => {
                self.push(
                    "period.kind",
                    "a period kind is required, e.g. PERIOD_KIND_MONTH",
                );
                return None;
            }
        };
        match Period::parse(kind, &p.date, &p.end_date) {
            Ok(period) => Some(period),
            Err(violations) => {
                self.0
                    .extend(violations.0.into_iter().map(|v| (v.field, v.description)));
                None
            }
        }
    }

    /// A template key: empty (when allowed) or lower_snake_case.
    pub fn template(&mut self, field: &str, key: &str, required: bool) {
        if key.is_empty() {
            if required {
                self.push(field, "a template key is required");
            }
        } else if !names::is_valid_key(key) {
            self.push(
                field,
                format!("{key:?} is not a template key (lower_snake_case)"),
            );
        }
    }

    /// A version number: 0 (when allowed) or positive.
    pub fn version(&mut self, field: &str, version: i32, required: bool) -> u32 {
        match u32::try_from(version) {
            Ok(0) if required => {
                self.push(field, "a version number (1 or more) is required");
                0
            }
            Ok(v) => v,
            Err(_) => {
                self.push(field, format!("must not be negative, got {version}"));
                0
            }
        }
    }

    /// The number of facts per indicator: 0 → 20, at most 200.
    pub fn facts_per_indicator(&mut self, n: i32) -> usize {
        match n {
            0 => 20,
            1..=MAX_FACTS_PER_INDICATOR => n as usize,
            _ => {
                self.push(
                    "facts_per_indicator",
                    format!("must be 0 to {MAX_FACTS_PER_INDICATOR}, got {n}"),
                );
                0
            }
        }
    }

    /// `Ok` if nothing was found wrong, else `INVALID_ARGUMENT` naming every field.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(kpi_runtime::status::invalid_argument(
                "invalid request",
                self.0,
            ))
        }
    }
}

/// A page token for the item at `offset`.
pub fn page_token(offset: usize) -> String {
    names::encode_page_token(&offset.to_string())
}

/// The page of `items` at `offset` and the next page's token.
pub fn paginate<T>(items: Vec<T>, size: usize, offset: usize) -> (Vec<T>, String) {
    let (range, next) = page_range(items.len(), size, offset);
    let page = items
        .into_iter()
        .skip(range.start)
        .take(range.len())
        .collect();
    (page, next)
}

/// Which of `total` items the page at `offset` holds, and the next page's
/// token (empty after the last page).
pub fn page_range(total: usize, size: usize, offset: usize) -> (Range<usize>, String) {
    let start = offset.min(total);
    let end = start.saturating_add(size).min(total);
    let next = if end < total {
        page_token(end)
    } else {
        String::new()
    };
    (start..end, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once_and_the_last_has_no_token() {
        // Five items, pages of two: 0..2, 2..4, 4..5.
        let (first, next) = page_range(5, 2, 0);
        assert_eq!((first, next.is_empty()), (0..2, false));
        assert_eq!(next, page_token(2));
        assert_eq!(page_range(5, 2, 2), (2..4, page_token(4)));
        assert_eq!(page_range(5, 2, 4), (4..5, String::new()));
        // Exactly full, and past the end (a token from a longer list).
        assert_eq!(page_range(4, 2, 2), (2..4, String::new()));
        assert_eq!(page_range(5, 2, 9), (5..5, String::new()));
        assert_eq!(page_range(0, 50, 0), (0..0, String::new()));
    }

    #[test]
    fn paginate_takes_the_items_of_the_page() {
        let items = vec!['a', 'b', 'c', 'd', 'e'];
        assert_eq!(
            paginate(items.clone(), 2, 2),
            (vec!['c', 'd'], page_token(4))
        );
        assert_eq!(paginate(items, 2, 4), (vec!['e'], String::new()));
    }
}
