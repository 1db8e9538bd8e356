//! Domain results → scoring protos: resolved periods, indicator lines,
//! vetoes, provenance.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kpi_domain::indicator::IndicatorDef;
use kpi_domain::period::{Period, PeriodKind};
use kpi_domain::scorecard::{FiredVeto, IndicatorValue, Scored, ScoredItem};
use kpi_proto::common as cpb;
use kpi_proto::convert::timestamp;
use kpi_proto::scoring as pb;

use crate::clients::{DataStamp, Resolved};

/// The proto enum of a period kind.
pub fn period_kind_to(kind: PeriodKind) -> cpb::PeriodKind {
    match kind {
        PeriodKind::Day => cpb::PeriodKind::Day,
        PeriodKind::Week => cpb::PeriodKind::Week,
        PeriodKind::Month => cpb::PeriodKind::Month,
        PeriodKind::Quarter => cpb::PeriodKind::Quarter,
        PeriodKind::Custom => cpb::PeriodKind::Custom,
    }
}

/// A period with its instants in `tz`.
pub fn resolved_period(period: &Period, tz: Tz) -> cpb::ResolvedPeriod {
    let (start, end) = period.bounds(tz);
    cpb::ResolvedPeriod {
        kind: period_kind_to(period.kind) as i32,
        start_date: period.start.to_string(),
        end_date: period.end.to_string(),
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
        time_zone: tz.name().to_string(),
        label: period.label(),
    }
}

/// A subject proto.
pub fn subject(kind: cpb::SubjectKind, id: &str) -> cpb::Subject {
    cpb::Subject {
        kind: kind as i32,
        id: id.to_string(),
    }
}

/// What a scorecard was computed from.
pub fn provenance(resolved: &Resolved, stamp: DataStamp, now: DateTime<Utc>) -> pb::Provenance {
    pb::Provenance {
        template: resolved.key.clone(),
        template_version: i32::try_from(resolved.version).unwrap_or(i32::MAX),
        indicator_versions: resolved
            .indicators
            .iter()
            .map(|(k, (v, _))| (k.clone(), i32::try_from(*v).unwrap_or(i32::MAX)))
            .collect(),
        data_version: stamp.version,
        watermark: stamp.watermark.map(timestamp),
        computed_at: Some(timestamp(now)),
    }
}

/// One indicator line; `previous` is the value in the previous period.
pub fn indicator_line(
    item: &ScoredItem,
    def: Option<(u32, &IndicatorDef)>,
    previous: Option<&IndicatorValue>,
) -> pb::IndicatorScore {
    let v = &item.value;
    let previous_value = previous.and_then(|p| p.value);
    let (version, display_names, unit, direction, category) = match def {
        Some((version, d)) => (
            i32::try_from(version).unwrap_or(i32::MAX),
            d.display_names.clone().into_iter().collect(),
            d.unit.clone(),
            d.direction.as_str().to_string(),
            d.category.as_str().to_string(),
        ),
        None => Default::default(),
    };
    pb::IndicatorScore {
        indicator: item.indicator.clone(),
        indicator_version: version,
        display_names,
        unit,
        direction,
        category,
        value: v.value,
        numerator: v.numerator,
        denominator: v.denominator,
        sample_size: v.sample,
        min_sample: i64::try_from(item.min_sample).unwrap_or(i64::MAX),
        sufficient: item.sufficient,
        confidence_interval: v.interval.map(|(lower, upper)| pb::ConfidenceInterval {
            lower,
            upper,
            level: 0.95,
        }),
        score: item.score,
        weight: item.weight,
        effective_weight: item.effective_weight,
        contribution: item.contribution,
        band: item.band.clone(),
        target: item.target,
        target_met: item.target_met,
        previous_value,
        change: v
            .value
            .zip(previous_value)
            .map(|(now, before)| now - before),
        reason: item.reason.clone(),
    }
}

/// A fired veto with the facts behind it.
pub fn veto(fired: &FiredVeto, description: &str, fact_ids: Vec<String>) -> pb::VetoResult {
    pb::VetoResult {
        rule: fired.rule.clone(),
        description: description.to_string(),
        condition: fired.condition.clone(),
        values: fired.values.clone().into_iter().collect(),
        fact_ids,
        zero_total: fired.zero_total,
    }
}

/// The indicator lines of a scored scorecard, with the previous period's values.
pub fn lines(
    scored: &Scored,
    resolved: &Resolved,
    previous: Option<&BTreeMap<String, IndicatorValue>>,
) -> Vec<pb::IndicatorScore> {
    scored
        .items
        .iter()
        .map(|item| {
            indicator_line(
                item,
                resolved
                    .indicators
                    .get(&item.indicator)
                    .map(|(v, d)| (*v, d)),
                previous.and_then(|p| p.get(&item.indicator)),
            )
        })
        .collect()
}
