//! Measures: one aggregation over one fact type with a filter (the building
//! block of every indicator), and their validation against the fact schema.

use serde::{Deserialize, Serialize};

use crate::error::FieldViolation;
use crate::filter::{self, FieldSpec};
use crate::schema::{FactType, FieldType};

/// How a measure folds facts into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Number of facts.
    Count,
    /// Sum of a numeric field.
    Sum,
    /// Mean of a numeric field.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// A percentile of a numeric field.
    Percentile,
    /// Number of distinct values.
    CountDistinct,
}

/// Who gets the credit for a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// The fact type's natural owner.
    #[default]
    Default,
    /// The agent handling the ticket at resolution.
    ResolvingAgent,
    /// The agent who sent the first response.
    FirstResponder,
    /// The agent named by the survey, review or session.
    RatedAgent,
    /// Every agent who worked the ticket, proportionally.
    AllContributors,
}

impl Attribution {
    /// Whether the attribution is defined for facts of this type.
    pub fn fits(self, fact_type: FactType) -> bool {
        match self {
            Attribution::Default => true,
            Attribution::ResolvingAgent
            | Attribution::FirstResponder
            | Attribution::AllContributors => fact_type == FactType::Ticket,
            Attribution::RatedAgent => fact_type != FactType::Ticket,
        }
    }
}

/// Calendar or business-hours durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// Wall-clock time.
    #[default]
    Calendar,
    /// Only the tenant's business hours count.
    BusinessHours,
}

/// One aggregation over one fact type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// The fact type.
    pub fact_type: FactType,
    /// The aggregation.
    pub aggregation: Aggregation,
    /// The field aggregated; empty for count.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
    /// For percentile: in (0, 100].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub percentile: f64,
    /// The filter expression (canonical form once validated); empty means all facts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter: String,
    /// The timestamp field placing facts in a period; empty means the default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_field: String,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Measure {
    /// A count of every fact of `fact_type` matching `filter`.
    pub fn count(fact_type: FactType, filter: &str) -> Self {
        Self {
            fact_type,
            aggregation: Aggregation::Count,
            field: String::new(),
            percentile: 0.0,
            filter: filter.to_string(),
            time_field: String::new(),
        }
    }

    /// The time field in effect.
    pub fn effective_time_field(&self) -> &str {
        if self.time_field.is_empty() {
            self.fact_type.schema().default_time_field
        } else {
            &self.time_field
        }
    }

    /// The filter, parsed; `None` for no filter.
    pub fn parsed_filter(&self) -> Result<Option<filter::Expr>, filter::ParseError> {
        if self.filter.trim().is_empty() {
            Ok(None)
        } else {
            filter::parse(&self.filter).map(Some)
        }
    }

    /// Rewrites the filter into its canonical form (no-op when it does not parse).
    pub fn normalize(&mut self) {
        if let Ok(Some(expr)) = self.parsed_filter() {
            self.filter = expr.to_string();
        }
    }

    /// Every problem with the measure, with paths relative to it.
    pub fn check(&self, time_basis: TimeBasis) -> Vec<FieldViolation> {
        let schema = self.fact_type.schema();
        let mut out = Vec::new();
        let known = || schema.field_names().join(", ");
        match self.aggregation {
            Aggregation::Count => {
                if !self.field.is_empty() {
                    out.push(FieldViolation::new(
                        "field",
                        "count takes no field; use a filter to select facts",
                    ));
                }
            }
            aggregation => match schema.field(&self.field) {
                None if self.field.is_empty() => {
                    out.push(FieldViolation::new(
                        "field",
                        format!("{aggregation:?} needs a field").to_lowercase(),
                    ));
                }
                None => out.push(FieldViolation::new(
                    "field",
                    format!(
                        "unknown field \"{}\" of {} facts (known: {})",
                        self.field,
                        schema.fact_type.as_str(),
                        known()
                    ),
                )),
                Some(def) => {
                    if let Some(problem) = aggregation_misfit(aggregation, def.field_type) {
                        out.push(FieldViolation::new(
                            "field",
                            format!("\"{}\": {problem}", self.field),
                        ));
                    }
                    if time_basis == TimeBasis::BusinessHours
                        && def.field_type == FieldType::Duration
                        && !def.business_hours
                    {
                        out.push(FieldViolation::new(
                            "field",
                            format!(
                                "\"{}\" is not kept in business hours; use calendar time",
                                self.field
                            ),
                        ));
                    }
                }
            },
        }
        let wants_percentile = self.aggregation == Aggregation::Percentile;
        if wants_percentile && !(self.percentile > 0.0 && self.percentile <= 100.0) {
            out.push(FieldViolation::new(
                "percentile",
                "a percentile must be in (0, 100]",
            ));
        } else if !wants_percentile && self.percentile != 0.0 {
            out.push(FieldViolation::new(
                "percentile",
                "only a percentile aggregation takes a percentile",
            ));
        }
        if !self.time_field.is_empty() {
            match schema.field(&self.time_field) {
                Some(def) if def.field_type == FieldType::Timestamp => {}
                Some(_) => out.push(FieldViolation::new(
                    "time_field",
                    format!("\"{}\" is not a timestamp field", self.time_field),
                )),
                None => out.push(FieldViolation::new(
                    "time_field",
                    format!(
                        "unknown field \"{}\" of {} facts (known: {})",
                        self.time_field,
                        schema.fact_type.as_str(),
                        known()
                    ),
                )),
            }
        }
        match self.parsed_filter() {
            Err(err) => out.push(FieldViolation::new(
                "filter",
                format!("cannot parse filter: {err}"),
            )),
            Ok(None) => {}
            Ok(Some(expr)) => {
                for problem in expr.check(&|name: &str| schema.field(name).map(FieldSpec::from)) {
                    out.push(FieldViolation::new(
                        "filter",
                        format!(
                            "{} ({} fields: {})",
                            problem.description,
                            schema.fact_type.as_str(),
                            known()
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// Why an aggregation does not fit a field type, if it does not.
fn aggregation_misfit(aggregation: Aggregation, field_type: FieldType) -> Option<String> {
    let fits = match aggregation {
        Aggregation::Count | Aggregation::CountDistinct => true,
        Aggregation::Sum | Aggregation::Mean | Aggregation::Percentile => field_type.is_numeric(),
        Aggregation::Min | Aggregation::Max => field_type.is_ordered(),
    };
    (!fits).then(|| {
        let kind = format!("{field_type:?}").to_lowercase();
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!(
            "{} does not fit {article} {kind} field",
            format!("{aggregation:?}").to_lowercase()
        )
    })
}
