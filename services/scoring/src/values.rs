//! Indicator values for many subjects at once: the measures of every
//! indicator a template needs are sent to data-ingestion in one
//! QueryMeasures call per 100 measures (computed in its database), then
//! turned into values with the domain's math; derived indicators are
//! computed last from the values they refer to.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use kpi_domain::indicator::{IndicatorDef, IndicatorKind};
use kpi_domain::measure::{Aggregation, Measure};
use kpi_domain::scorecard::{self, Aggregate, IndicatorValue, MeasureValues};
use kpi_proto::convert::{attribution_to, measure_to, time_basis_to, timestamp};
use kpi_proto::ingestion as ing;
use tonic::Status;

use crate::clients::{Clients, DataStamp, instant};

/// The most measures data-ingestion takes in one query.
const MEASURES_PER_QUERY: usize = 100;
/// Up to this many subjects are named in the query; more are filtered here.
const NAMED_SUBJECTS_MAX: usize = 500;

/// indicator key → value, for one subject.
pub type Values = BTreeMap<String, IndicatorValue>;

/// What to compute values for.
pub struct ValuesQuery<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The period's instants, `[start, end)`.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// Working days in the period, for per-working-day indicators.
    pub working_days: u32,
    /// Agents or teams.
    pub group_by: ing::GroupBy,
    /// The subjects (agent or team ids).
    pub subjects: &'a [String],
    /// The indicators: key → (version, definition).
    pub indicators: &'a BTreeMap<String, (u32, IndicatorDef)>,
}

/// A measure's role in an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The measure of a simple indicator, or a ratio's numerator.
    Counted,
    /// A ratio's denominator.
    Base,
}

fn measure_id(key: &str, side: Side) -> String {
    match side {
        Side::Counted => format!("{key}/p"),
        Side::Base => format!("{key}/d"),
    }
}

/// The measures of a simple or ratio indicator, by side.
pub fn measures_of(def: &IndicatorDef) -> Vec<(Side, &Measure)> {
    match def.kind {
        IndicatorKind::Simple => def.measure.iter().map(|m| (Side::Counted, m)).collect(),
        IndicatorKind::Ratio => def
            .numerator
            .iter()
            .map(|m| (Side::Counted, m))
            .chain(def.denominator.iter().map(|m| (Side::Base, m)))
            .collect(),
        IndicatorKind::Derived => Vec::new(),
    }
}

/// The aggregate of a subject that had no matching fact: a count of nothing
/// is 0; any other aggregate of nothing has no value.
fn empty_aggregate(m: Option<&Measure>) -> Aggregate {
    match m {
        Some(m) if m.aggregation == Aggregation::Count => Aggregate {
            value: Some(0.0),
            count: 0,
        },
        _ => Aggregate::default(),
    }
}

/// Values per subject (every subject asked for gets an entry) and the data
/// version they were read at.
pub async fn compute(
    clients: &Clients,
    q: &ValuesQuery<'_>,
) -> Result<(BTreeMap<String, Values>, DataStamp), Status> {
    let (raw, stamp) = fetch(clients, q).await?;
    let mut out = BTreeMap::new();
    for subject in q.subjects {
        let aggregates = raw.get(subject);
        out.insert(
            subject.clone(),
            subject_values(q.indicators, aggregates, q.working_days),
        );
    }
    Ok((out, stamp))
}

/// measure id → aggregate, for one subject.
type Raw = BTreeMap<String, Aggregate>;

async fn fetch(
    clients: &Clients,
    q: &ValuesQuery<'_>,
) -> Result<(BTreeMap<String, Raw>, DataStamp), Status> {
    let mut queries = Vec::new();
    for (key, (_, def)) in q.indicators {
        for (side, m) in measures_of(def) {
            queries.push(ing::MeasureQuery {
                id: measure_id(key, side),
                measure: Some(measure_to(m)),
                attribution: attribution_to(def.attribution) as i32,
                time_basis: time_basis_to(def.time_basis) as i32,
            });
        }
    }
    let subject_ids = if q.subjects.len() <= NAMED_SUBJECTS_MAX {
        q.subjects.to_vec()
    } else {
        Vec::new()
    };
    let calls = queries.chunks(MEASURES_PER_QUERY).map(|chunk| {
        clients.query_measures(ing::QueryMeasuresRequest {
            parent: format!("tenants/{}", q.tenant),
            start_time: Some(timestamp(q.window.0)),
            end_time: Some(timestamp(q.window.1)),
            group_by: q.group_by as i32,
            subject_ids: subject_ids.clone(),
            measures: chunk.to_vec(),
        })
    });
    let responses = futures::future::try_join_all(calls).await?;
    let mut raw: BTreeMap<String, Raw> = BTreeMap::new();
    let mut stamp = DataStamp {
        version: 0,
        watermark: None,
    };
    for response in responses {
        stamp.version = stamp.version.max(response.data_version);
        stamp.watermark = stamp.watermark.max(response.watermark.and_then(instant));
        for result in response.results {
            for v in result.values {
                raw.entry(v.subject_id).or_default().insert(
                    result.id.clone(),
                    Aggregate {
                        value: v.value,
                        count: v.count,
                    },
                );
            }
        }
    }
    Ok((raw, stamp))
}

/// The values of every indicator for one subject from its aggregates.
fn subject_values(
    indicators: &BTreeMap<String, (u32, IndicatorDef)>,
    raw: Option<&Raw>,
    working_days: u32,
) -> Values {
    let get = |key: &str, side: Side, m: Option<&Measure>| {
        raw.and_then(|r| r.get(&measure_id(key, side)).copied())
            .unwrap_or_else(|| empty_aggregate(m))
    };
    let mut values = Values::new();
    for (key, (_, def)) in indicators {
        let primary_measure = match def.kind {
            IndicatorKind::Simple => def.measure.as_ref(),
            IndicatorKind::Ratio => def.numerator.as_ref(),
            IndicatorKind::Derived => continue,
        };
        let m = MeasureValues {
            primary: get(key, Side::Counted, primary_measure),
            denominator: get(key, Side::Base, def.denominator.as_ref()),
        };
        values.insert(
            key.clone(),
            scorecard::measured_value(def, &m, working_days),
        );
    }
    add_derived(indicators, &mut values);
    values
}

/// Derived indicators, each once everything it refers to has a value
/// (derived indicators may refer to derived ones; the catalog refuses cycles).
fn add_derived(indicators: &BTreeMap<String, (u32, IndicatorDef)>, values: &mut Values) {
    let mut pending: BTreeSet<&String> = indicators
        .iter()
        .filter(|(_, (_, d))| d.kind == IndicatorKind::Derived)
        .map(|(k, _)| k)
        .collect();
    while !pending.is_empty() {
        let ready: Vec<&String> = pending
            .iter()
            .copied()
            .filter(|k| {
                indicators[*k]
                    .1
                    .formula_refs()
                    .iter()
                    .all(|r| values.contains_key(r))
            })
            .collect();
        if ready.is_empty() {
            // A reference the catalog did not send: leave those without value.
            for k in pending {
                values.insert(k.clone(), IndicatorValue::default());
            }
            return;
        }
        for k in ready {
            let v = scorecard::derived_value(&indicators[k].1, values);
            values.insert(k.clone(), v);
            pending.remove(k);
        }
    }
}
