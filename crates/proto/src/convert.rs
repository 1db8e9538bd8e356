//! Conversions between the protos and the domain, shared by the services'
//! edges. Proto → domain validates shapes and enum values, collecting every
//! problem with its field path; the domain then validates meaning.

use std::collections::BTreeMap;

use crate::catalog as pb;
use crate::common as cpb;
use chrono::{DateTime, NaiveDate, Utc};
use kpi_domain::calendar::{BusinessCalendar, Holiday, HourMinute, WeeklyHours};
use kpi_domain::catalog::{Version, VersionState};
use kpi_domain::error::FieldViolation;
use kpi_domain::filter::{self, CompareOp, Expr, Literal};
use kpi_domain::indicator::{Category, IndicatorDef, IndicatorKind};
use kpi_domain::measure::{Aggregation, Attribution, Measure, TimeBasis};
use kpi_domain::rules::{Band, Direction, ScoringRule};
use kpi_domain::schema::FactType;
use kpi_domain::template::{
    AlertCondition, AlertOp, AlertRule, Applicability, CohortOverride, GradeBand, RollupMode,
    TeamRollup, TemplateDef, TemplateItem, VetoRule,
};
use prost_types::value::Kind;

/// Collects violations while converting.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldViolation>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }
}

/// `tenants/{tenant}/{collection}/{key}`.
fn child_name(tenant: &str, collection: &str, key: &str) -> String {
    format!("tenants/{tenant}/{collection}/{key}")
}

fn path(parent: &str, child: &str) -> String {
    kpi_domain::error::join_path(parent, child)
}

/// A timestamp for an instant.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

// --- enums -----------------------------------------------------------------

/// See the module doc: proto → domain with field-path problems.
pub fn fact_type_from(v: i32, field: &str, p: &mut Problems) -> Option<FactType> {
    use cpb::FactType as F;
    let t = match F::try_from(v) {
        Ok(F::Ticket) => FactType::Ticket,
        Ok(F::Conversation) => FactType::Conversation,
        Ok(F::Survey) => FactType::Survey,
        Ok(F::QaReview) => FactType::QaReview,
        Ok(F::QaItem) => FactType::QaItem,
        Ok(F::QaViolation) => FactType::QaViolation,
        Ok(F::BadReview) => FactType::BadReview,
        Ok(F::FieldVisit) => FactType::FieldVisit,
        Ok(F::Assessment) => FactType::Assessment,
        Ok(F::Unspecified) | Err(_) => {
            p.push(field, "a fact type is required, e.g. FACT_TYPE_TICKET");
            return None;
        }
    };
    Some(t)
}

/// The proto enum of a fact type.
pub fn fact_type_to(t: FactType) -> cpb::FactType {
    use cpb::FactType as F;
    match t {
        FactType::Ticket => F::Ticket,
        FactType::Conversation => F::Conversation,
        FactType::Survey => F::Survey,
        FactType::QaReview => F::QaReview,
        FactType::QaItem => F::QaItem,
        FactType::QaViolation => F::QaViolation,
        FactType::BadReview => F::BadReview,
        FactType::FieldVisit => F::FieldVisit,
        FactType::Assessment => F::Assessment,
    }
}

/// See the module doc: proto → domain with field-path problems.
pub fn aggregation_from(v: i32, field: &str, p: &mut Problems) -> Option<Aggregation> {
    use cpb::Aggregation as A;
    let a = match A::try_from(v) {
        Ok(A::Count) => Aggregation::Count,
        Ok(A::Sum) => Aggregation::Sum,
        Ok(A::Mean) => Aggregation::Mean,
        Ok(A::Min) => Aggregation::Min,
        Ok(A::Max) => Aggregation::Max,
        Ok(A::Percentile) => Aggregation::Percentile,
        Ok(A::CountDistinct) => Aggregation::CountDistinct,
        Ok(A::Unspecified) | Err(_) => {
            p.push(field, "an aggregation is required, e.g. AGGREGATION_COUNT");
            return None;
        }
    };
    Some(a)
}

fn aggregation_to(a: Aggregation) -> cpb::Aggregation {
    use cpb::Aggregation as A;
    match a {
        Aggregation::Count => A::Count,
        Aggregation::Sum => A::Sum,
        Aggregation::Mean => A::Mean,
        Aggregation::Min => A::Min,
        Aggregation::Max => A::Max,
        Aggregation::Percentile => A::Percentile,
        Aggregation::CountDistinct => A::CountDistinct,
    }
}

/// See the module doc: proto → domain with field-path problems.
pub fn attribution_from(v: i32, field: &str, p: &mut Problems) -> Attribution {
    use cpb::Attribution as A;
    match A::try_from(v) {
        Ok(A::Unspecified) => Attribution::Default,
        Ok(A::ResolvingAgent) => Attribution::ResolvingAgent,
        Ok(A::FirstResponder) => Attribution::FirstResponder,
        Ok(A::RatedAgent) => Attribution::RatedAgent,
        Ok(A::AllContributors) => Attribution::AllContributors,
        Err(_) => {
            p.push(field, format!("unknown attribution {v}"));
            Attribution::Default
        }
    }
}

/// The proto enum of an attribution rule.
pub fn attribution_to(a: Attribution) -> cpb::Attribution {
    use cpb::Attribution as A;
    match a {
        Attribution::Default => A::Unspecified,
        Attribution::ResolvingAgent => A::ResolvingAgent,
        Attribution::FirstResponder => A::FirstResponder,
        Attribution::RatedAgent => A::RatedAgent,
        Attribution::AllContributors => A::AllContributors,
    }
}

/// See the module doc: proto → domain with field-path problems.
pub fn time_basis_from(v: i32, field: &str, p: &mut Problems) -> TimeBasis {
    use cpb::TimeBasis as T;
    match T::try_from(v) {
        Ok(T::Unspecified | T::Calendar) => TimeBasis::Calendar,
        Ok(T::BusinessHours) => TimeBasis::BusinessHours,
        Err(_) => {
            p.push(field, format!("unknown time basis {v}"));
            TimeBasis::Calendar
        }
    }
}

/// The proto enum of a time basis.
pub fn time_basis_to(t: TimeBasis) -> cpb::TimeBasis {
    match t {
        TimeBasis::Calendar => cpb::TimeBasis::Calendar,
        TimeBasis::BusinessHours => cpb::TimeBasis::BusinessHours,
    }
}

fn direction_from(v: i32, field: &str, p: &mut Problems) -> Option<Direction> {
    match pb::Direction::try_from(v) {
        Ok(pb::Direction::HigherIsBetter) => Some(Direction::HigherIsBetter),
        Ok(pb::Direction::LowerIsBetter) => Some(Direction::LowerIsBetter),
        _ => {
            p.push(
                field,
                "a direction is required: DIRECTION_HIGHER_IS_BETTER or DIRECTION_LOWER_IS_BETTER",
            );
            None
        }
    }
}

/// The proto enum of a direction.
pub fn direction_to(d: Direction) -> pb::Direction {
    match d {
        Direction::HigherIsBetter => pb::Direction::HigherIsBetter,
        Direction::LowerIsBetter => pb::Direction::LowerIsBetter,
    }
}

fn category_from(v: i32, field: &str, p: &mut Problems) -> Option<Category> {
    use pb::Category as C;
    match C::try_from(v) {
        Ok(C::Efficiency) => Some(Category::Efficiency),
        Ok(C::Outcome) => Some(Category::Outcome),
        Ok(C::Behavior) => Some(Category::Behavior),
        Ok(C::Capability) => Some(Category::Capability),
        _ => {
            p.push(field, "a category is required: CATEGORY_EFFICIENCY, CATEGORY_OUTCOME, CATEGORY_BEHAVIOR or CATEGORY_CAPABILITY");
            None
        }
    }
}

/// The proto enum of a category.
pub fn category_to(c: Category) -> pb::Category {
    match c {
        Category::Efficiency => pb::Category::Efficiency,
        Category::Outcome => pb::Category::Outcome,
        Category::Behavior => pb::Category::Behavior,
        Category::Capability => pb::Category::Capability,
    }
}

fn state_to(s: VersionState) -> pb::VersionState {
    match s {
        VersionState::Draft => pb::VersionState::Draft,
        VersionState::Active => pb::VersionState::Active,
        VersionState::Retired => pb::VersionState::Retired,
    }
}

// --- filters ---------------------------------------------------------------

/// A filter's expression: from `expression`, or printed from `condition`.
/// See the module doc: proto → domain with field-path problems.
pub fn filter_from(f: Option<&cpb::Filter>, field: &str, p: &mut Problems) -> String {
    let Some(f) = f else { return String::new() };
    match (f.expression.trim().is_empty(), &f.condition) {
        (true, None) => String::new(),
        (false, None) => f.expression.clone(),
        (true, Some(c)) => condition_to_expr(c, &path(field, "condition"), p)
            .map(|e| e.to_string())
            .unwrap_or_default(),
        // Both forms, as a read resource carries them: fine when they agree.
        (false, Some(c)) => {
            let mut scratch = Problems::default();
            let from_tree = condition_to_expr(c, &path(field, "condition"), &mut scratch);
            match filter::parse(&f.expression) {
                Ok(expr) if Some(&expr) == from_tree.as_ref() => f.expression.clone(),
                _ => {
                    p.push(field, "expression and condition disagree; give one of them");
                    String::new()
                }
            }
        }
    }
}

/// The proto filter of an expression: both forms filled.
pub fn filter_to(expression: &str) -> Option<cpb::Filter> {
    if expression.is_empty() {
        return None;
    }
    let condition = filter::parse(expression)
        .ok()
        .map(|e| expr_to_condition(&e));
    Some(cpb::Filter {
        expression: expression.to_string(),
        condition,
    })
}

/// See the module doc: proto → domain with field-path problems.
pub fn condition_to_expr(c: &cpb::Condition, field: &str, p: &mut Problems) -> Option<Expr> {
    use cpb::condition::Node;
    let list = |l: &cpb::ConditionList, name: &str, p: &mut Problems| -> Option<Vec<Expr>> {
        let items: Vec<Option<Expr>> = l
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| condition_to_expr(c, &format!("{field}.{name}.conditions[{i}]"), p))
            .collect();
        items.into_iter().collect()
    };
    match &c.node {
        None => {
            p.push(field, "a condition needs one of all, any, not or compare");
            None
        }
        Some(Node::All(l)) => list(l, "all", p).map(Expr::And),
        Some(Node::Any(l)) => list(l, "any", p).map(Expr::Or),
        Some(Node::Not(inner)) => {
            condition_to_expr(inner, &path(field, "not"), p).map(|e| Expr::Not(Box::new(e)))
        }
        Some(Node::Compare(cmp)) => comparison_to_expr(cmp, &path(field, "compare"), p),
    }
}

fn comparison_to_expr(cmp: &cpb::Comparison, field: &str, p: &mut Problems) -> Option<Expr> {
    use cpb::ComparisonOperator as O;
    let op = O::try_from(cmp.op).unwrap_or(O::Unspecified);
    let (op, value) = match op {
        O::IsNull => (CompareOp::Eq, Literal::Null),
        O::IsNotNull => (CompareOp::Ne, Literal::Null),
        O::Unspecified => {
            p.push(
                path(field, "op"),
                "an operator is required, e.g. COMPARISON_OPERATOR_EQ",
            );
            return None;
        }
        other => {
            let op = match other {
                O::Eq => CompareOp::Eq,
                O::Ne => CompareOp::Ne,
                O::Lt => CompareOp::Lt,
                O::Le => CompareOp::Le,
                O::Gt => CompareOp::Gt,
                O::Ge => CompareOp::Ge,
                O::In => CompareOp::In,
                _ => CompareOp::NotIn,
            };
            let Some(value) = cmp.value.as_ref().and_then(literal_from) else {
                p.push(
                    path(field, "value"),
                    "a value is required: a string, number, bool, null or (for IN) a list",
                );
                return None;
            };
            (op, value)
        }
    };
    if cmp.field.trim().is_empty() {
        p.push(path(field, "field"), "a field is required");
        return None;
    }
    Some(Expr::Compare {
        field: cmp.field.clone(),
        op,
        value,
    })
}

fn literal_from(v: &prost_types::Value) -> Option<Literal> {
    Some(match v.kind.as_ref()? {
        Kind::NullValue(_) => Literal::Null,
        Kind::NumberValue(n) => Literal::Number(*n),
        Kind::StringValue(s) => Literal::String(s.clone()),
        Kind::BoolValue(b) => Literal::Bool(*b),
        Kind::ListValue(l) => Literal::List(
            l.values
                .iter()
                .map(literal_from)
                .collect::<Option<Vec<_>>>()?,
        ),
        Kind::StructValue(_) => return None,
    })
}

fn literal_to(l: &Literal) -> prost_types::Value {
    let kind = match l {
        Literal::Null => Kind::NullValue(0),
        Literal::Number(n) => Kind::NumberValue(*n),
        Literal::String(s) => Kind::StringValue(s.clone()),
        Literal::Bool(b) => Kind::BoolValue(*b),
        Literal::List(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(literal_to).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The proto condition tree of an expression.
pub fn expr_to_condition(e: &Expr) -> cpb::Condition {
    use cpb::ComparisonOperator as O;
    use cpb::condition::Node;
    let list = |items: &[Expr]| cpb::ConditionList {
        conditions: items.iter().map(expr_to_condition).collect(),
    };
    let node = match e {
        Expr::And(items) => Node::All(list(items)),
        Expr::Or(items) => Node::Any(list(items)),
        Expr::Not(inner) => Node::Not(Box::new(expr_to_condition(inner))),
        Expr::Compare { field, op, value } => {
            let (op, value) = match (op, value) {
                (CompareOp::Eq, Literal::Null) => (O::IsNull, None),
                (CompareOp::Ne, Literal::Null) => (O::IsNotNull, None),
                (op, value) => {
                    let op = match op {
                        CompareOp::Eq => O::Eq,
                        CompareOp::Ne => O::Ne,
                        CompareOp::Lt => O::Lt,
                        CompareOp::Le => O::Le,
                        CompareOp::Gt => O::Gt,
                        CompareOp::Ge => O::Ge,
                        CompareOp::In => O::In,
                        CompareOp::NotIn => O::NotIn,
                    };
                    (op, Some(literal_to(value)))
                }
            };
            Node::Compare(cpb::Comparison {
                field: field.clone(),
                op: op as i32,
                value,
            })
        }
    };
    cpb::Condition { node: Some(node) }
}

// --- measures and rules ----------------------------------------------------

/// See the module doc: proto → domain with field-path problems.
pub fn measure_from(m: &cpb::Measure, field: &str, p: &mut Problems) -> Option<Measure> {
    let fact_type = fact_type_from(m.fact_type, &path(field, "fact_type"), p);
    let aggregation = aggregation_from(m.aggregation, &path(field, "aggregation"), p);
    let filter = filter_from(m.filter.as_ref(), &path(field, "filter"), p);
    Some(Measure {
        fact_type: fact_type?,
        aggregation: aggregation?,
        field: m.field.clone(),
        percentile: m.percentile,
        filter,
        time_field: m.time_field.clone(),
    })
}

/// The proto of a measure.
pub fn measure_to(m: &Measure) -> cpb::Measure {
    cpb::Measure {
        fact_type: fact_type_to(m.fact_type) as i32,
        aggregation: aggregation_to(m.aggregation) as i32,
        field: m.field.clone(),
        percentile: m.percentile,
        filter: filter_to(&m.filter),
        time_field: m.time_field.clone(),
    }
}

fn rule_from(r: Option<&pb::ScoringRule>) -> Option<ScoringRule> {
    use pb::scoring_rule::Rule;
    Some(match r?.rule.as_ref()? {
        Rule::Linear(l) => ScoringRule::Linear {
            worst: l.worst,
            best: l.best,
        },
        Rule::Bands(b) => ScoringRule::Bands {
            bands: b
                .bands
                .iter()
                .map(|b| Band {
                    label: b.label.clone(),
                    threshold: b.threshold,
                    points: b.points,
                })
                .collect(),
            below_points: b.below_points,
            below_label: b.below_label.clone(),
        },
        Rule::TargetMet(_) => ScoringRule::TargetMet,
        Rule::Cap(c) => ScoringRule::Cap {
            threshold: c.threshold,
            zero_at: c.zero_at,
        },
    })
}

fn rule_to(r: &ScoringRule) -> pb::ScoringRule {
    use pb::scoring_rule::Rule;
    let rule = match r {
        ScoringRule::Linear { worst, best } => Rule::Linear(pb::LinearRule {
            worst: *worst,
            best: *best,
        }),
        ScoringRule::Bands {
            bands,
            below_points,
            below_label,
        } => Rule::Bands(pb::BandsRule {
            bands: bands
                .iter()
                .map(|b| pb::Band {
                    label: b.label.clone(),
                    threshold: b.threshold,
                    points: b.points,
                })
                .collect(),
            below_points: *below_points,
            below_label: below_label.clone(),
        }),
        ScoringRule::TargetMet => Rule::TargetMet(pb::TargetMetRule {}),
        ScoringRule::Cap { threshold, zero_at } => Rule::Cap(pb::CapRule {
            threshold: *threshold,
            zero_at: *zero_at,
        }),
    };
    pb::ScoringRule { rule: Some(rule) }
}

fn non_negative(v: i64, field: &str, p: &mut Problems) -> u64 {
    u64::try_from(v).unwrap_or_else(|_| {
        p.push(field, "must not be negative");
        0
    })
}

// --- indicators ------------------------------------------------------------

/// The domain definition of a proto indicator; `field` is its path in the request.
pub fn indicator_from(i: &pb::Indicator, field: &str) -> Result<IndicatorDef, Vec<FieldViolation>> {
    let mut p = Problems::default();
    let kind = match pb::IndicatorKind::try_from(i.kind) {
        Ok(pb::IndicatorKind::Simple) => Some(IndicatorKind::Simple),
        Ok(pb::IndicatorKind::Ratio) => Some(IndicatorKind::Ratio),
        Ok(pb::IndicatorKind::Derived) => Some(IndicatorKind::Derived),
        _ => {
            p.push(path(field, "kind"), "a kind is required: INDICATOR_KIND_SIMPLE, INDICATOR_KIND_RATIO or INDICATOR_KIND_DERIVED");
            None
        }
    };
    let measure = |m: &Option<cpb::Measure>, name: &str, p: &mut Problems| {
        m.as_ref()
            .and_then(|m| measure_from(m, &path(field, name), p))
    };
    let def = IndicatorDef {
        display_names: i.display_names.clone().into_iter().collect(),
        description: i.description.clone(),
        kind: kind.unwrap_or(IndicatorKind::Simple),
        measure: measure(&i.measure, "measure", &mut p),
        numerator: measure(&i.numerator, "numerator", &mut p),
        denominator: measure(&i.denominator, "denominator", &mut p),
        formula: i.formula.clone(),
        scale: if i.scale == 0.0 { 1.0 } else { i.scale },
        unit: i.unit.clone(),
        direction: direction_from(i.direction, &path(field, "direction"), &mut p)
            .unwrap_or(Direction::HigherIsBetter),
        category: category_from(i.category, &path(field, "category"), &mut p)
            .unwrap_or(Category::Outcome),
        attribution: attribution_from(i.attribution, &path(field, "attribution"), &mut p),
        time_basis: time_basis_from(i.time_basis, &path(field, "time_basis"), &mut p),
        min_sample: non_negative(i.min_sample, &path(field, "min_sample"), &mut p),
        per_working_day: i.per_working_day,
        default_target: i.default_target,
        default_scoring: rule_from(i.default_scoring.as_ref()),
        calendar: i.calendar.clone(),
    };
    if p.0.is_empty() { Ok(def) } else { Err(p.0) }
}

/// The proto of an indicator version.
pub fn indicator_to(tenant: &str, key: &str, v: &Version<IndicatorDef>) -> pb::Indicator {
    let d = &v.def;
    pb::Indicator {
        name: child_name(tenant, "indicators", key),
        key: key.to_string(),
        version: v.version as i32,
        state: state_to(v.state) as i32,
        display_names: d.display_names.clone().into_iter().collect(),
        description: d.description.clone(),
        kind: match d.kind {
            IndicatorKind::Simple => pb::IndicatorKind::Simple,
            IndicatorKind::Ratio => pb::IndicatorKind::Ratio,
            IndicatorKind::Derived => pb::IndicatorKind::Derived,
        } as i32,
        measure: d.measure.as_ref().map(measure_to),
        numerator: d.numerator.as_ref().map(measure_to),
        denominator: d.denominator.as_ref().map(measure_to),
        formula: d.formula.clone(),
        scale: d.scale,
        unit: d.unit.clone(),
        direction: direction_to(d.direction) as i32,
        category: category_to(d.category) as i32,
        attribution: attribution_to(d.attribution) as i32,
        time_basis: time_basis_to(d.time_basis) as i32,
        min_sample: d.min_sample as i64,
        default_target: d.default_target,
        default_scoring: d.default_scoring.as_ref().map(rule_to),
        calendar: d.calendar.clone(),
        create_time: Some(timestamp(v.created_at)),
        update_time: Some(timestamp(v.updated_at)),
        per_working_day: d.per_working_day,
    }
}

// --- templates -------------------------------------------------------------

/// A local date from "YYYY-MM-DD".
pub fn date_from(s: &str, field: &str, p: &mut Problems) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) if s.is_empty() => {
            p.push(field, "a date (YYYY-MM-DD) is required");
            None
        }
        Err(_) => {
            p.push(field, format!("\"{s}\" is not a date (YYYY-MM-DD)"));
            None
        }
    }
}

fn alert_from(a: &pb::AlertRule, field: &str, p: &mut Problems) -> Option<AlertRule> {
    use cpb::ComparisonOperator as O;
    use pb::alert_rule::Rule;
    let condition = match &a.rule {
        None => {
            p.push(
                field,
                "an alert needs one of consecutive_decline, threshold or divergence",
            );
            return None;
        }
        Some(Rule::ConsecutiveDecline(c)) => AlertCondition::ConsecutiveDecline {
            indicator: c.indicator.clone(),
            periods: u32::try_from(c.periods).unwrap_or(0),
        },
        Some(Rule::Threshold(t)) => {
            let op = match O::try_from(t.op) {
                Ok(O::Gt) => AlertOp::Gt,
                Ok(O::Ge) => AlertOp::Ge,
                Ok(O::Lt) => AlertOp::Lt,
                Ok(O::Le) => AlertOp::Le,
                _ => {
                    p.push(
                        path(field, "threshold.op"),
                        "use COMPARISON_OPERATOR_GT, _GE, _LT or _LE",
                    );
                    return None;
                }
            };
            AlertCondition::Threshold {
                indicator: t.indicator.clone(),
                op,
                value: t.value,
            }
        }
        Some(Rule::Divergence(d)) => AlertCondition::Divergence {
            rising: d.rising.clone(),
            falling: d.falling.clone(),
        },
    };
    Some(AlertRule {
        key: a.key.clone(),
        description: a.description.clone(),
        severity: a.severity.clone(),
        condition,
    })
}

fn alert_to(a: &AlertRule) -> pb::AlertRule {
    use cpb::ComparisonOperator as O;
    use pb::alert_rule::Rule;
    let rule = match &a.condition {
        AlertCondition::ConsecutiveDecline { indicator, periods } => {
            Rule::ConsecutiveDecline(pb::ConsecutiveDecline {
                indicator: indicator.clone(),
                periods: *periods as i32,
            })
        }
        AlertCondition::Threshold {
            indicator,
            op,
            value,
        } => Rule::Threshold(pb::ThresholdCrossing {
            indicator: indicator.clone(),
            op: match op {
                AlertOp::Gt => O::Gt,
                AlertOp::Ge => O::Ge,
                AlertOp::Lt => O::Lt,
                AlertOp::Le => O::Le,
            } as i32,
            value: *value,
        }),
        AlertCondition::Divergence { rising, falling } => Rule::Divergence(pb::Divergence {
            rising: rising.clone(),
            falling: falling.clone(),
        }),
    };
    pb::AlertRule {
        key: a.key.clone(),
        description: a.description.clone(),
        severity: a.severity.clone(),
        rule: Some(rule),
    }
}

/// The domain definition of a proto template; `field` is its path in the request.
pub fn template_from(t: &pb::Template, field: &str) -> Result<TemplateDef, Vec<FieldViolation>> {
    let mut p = Problems::default();
    let applicability = t.applicability.clone().unwrap_or_default();
    let items = t
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| TemplateItem {
            indicator: it.indicator.clone(),
            indicator_version: u32::try_from(it.indicator_version).unwrap_or_else(|_| {
                p.push(
                    format!("{field}.items[{i}].indicator_version"),
                    "must not be negative",
                );
                0
            }),
            weight: it.weight,
            scoring: rule_from(it.scoring.as_ref()),
            target: it.target,
            min_sample: non_negative(
                it.min_sample,
                &format!("{field}.items[{i}].min_sample"),
                &mut p,
            ),
            cohort_overrides: it
                .cohort_overrides
                .iter()
                .map(|o| CohortOverride {
                    cohort: o.cohort.clone(),
                    target: o.target,
                    scoring: rule_from(o.scoring.as_ref()),
                })
                .collect(),
        })
        .collect();
    let rollup = t.team_rollup.clone().unwrap_or_default();
    let mode = match pb::RollupMode::try_from(rollup.mode) {
        Ok(pb::RollupMode::CohortWeightedMean) => RollupMode::CohortWeightedMean,
        _ => RollupMode::FromFacts,
    };
    let alerts = t
        .alerts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| alert_from(a, &format!("{field}.alerts[{i}]"), &mut p))
        .collect();
    let effective_from = date_from(&t.effective_from, &path(field, "effective_from"), &mut p);
    let effective_until = if t.effective_until.is_empty() {
        None
    } else {
        date_from(&t.effective_until, &path(field, "effective_until"), &mut p)
    };
    let def = TemplateDef {
        display_names: t.display_names.clone().into_iter().collect(),
        description: t.description.clone(),
        industry: t.industry.clone(),
        applicability: Applicability {
            roles: applicability.roles,
            teams: applicability.teams,
            cohorts: applicability.cohorts,
            priority: applicability.priority,
        },
        items,
        vetoes: t
            .vetoes
            .iter()
            .map(|v| VetoRule {
                key: v.key.clone(),
                description: v.description.clone(),
                condition: v.condition.clone(),
                zero_total: v.zero_total,
            })
            .collect(),
        grades: t
            .grades
            .iter()
            .map(|g| GradeBand {
                grade: g.grade.clone(),
                min_total: g.min_total,
            })
            .collect(),
        team_rollup: TeamRollup {
            mode,
            cohort_weights: rollup.cohort_weights.into_iter().collect(),
        },
        alerts,
        effective_from: effective_from.unwrap_or_default(),
        effective_until,
        pinned_indicators: BTreeMap::new(),
    };
    if p.0.is_empty() { Ok(def) } else { Err(p.0) }
}

/// The proto of a template version.
pub fn template_to(tenant: &str, key: &str, v: &Version<TemplateDef>) -> pb::Template {
    let d = &v.def;
    pb::Template {
        name: child_name(tenant, "templates", key),
        key: key.to_string(),
        version: v.version as i32,
        state: state_to(v.state) as i32,
        display_names: d.display_names.clone().into_iter().collect(),
        description: d.description.clone(),
        industry: d.industry.clone(),
        applicability: Some(pb::Applicability {
            roles: d.applicability.roles.clone(),
            teams: d.applicability.teams.clone(),
            cohorts: d.applicability.cohorts.clone(),
            priority: d.applicability.priority,
        }),
        items: d
            .items
            .iter()
            .map(|it| pb::TemplateItem {
                indicator: it.indicator.clone(),
                indicator_version: it.indicator_version as i32,
                weight: it.weight,
                scoring: it.scoring.as_ref().map(rule_to),
                target: it.target,
                min_sample: it.min_sample as i64,
                cohort_overrides: it
                    .cohort_overrides
                    .iter()
                    .map(|o| pb::CohortOverride {
                        cohort: o.cohort.clone(),
                        target: o.target,
                        scoring: o.scoring.as_ref().map(rule_to),
                    })
                    .collect(),
            })
            .collect(),
        vetoes: d
            .vetoes
            .iter()
            .map(|v| pb::VetoRule {
                key: v.key.clone(),
                description: v.description.clone(),
                condition: v.condition.clone(),
                zero_total: v.zero_total,
            })
            .collect(),
        grades: d
            .grades
            .iter()
            .map(|g| pb::GradeBand {
                grade: g.grade.clone(),
                min_total: g.min_total,
            })
            .collect(),
        team_rollup: Some(pb::TeamRollup {
            mode: match d.team_rollup.mode {
                RollupMode::FromFacts => pb::RollupMode::FromFacts,
                RollupMode::CohortWeightedMean => pb::RollupMode::CohortWeightedMean,
            } as i32,
            cohort_weights: d.team_rollup.cohort_weights.clone().into_iter().collect(),
        }),
        alerts: d.alerts.iter().map(alert_to).collect(),
        effective_from: d.effective_from.to_string(),
        effective_until: d.effective_until.map(|u| u.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(v.created_at)),
        update_time: Some(timestamp(v.updated_at)),
        pinned_indicators: d
            .pinned_indicators
            .iter()
            .map(|(k, v)| (k.clone(), *v as i32))
            .collect(),
    }
}

// --- calendars -------------------------------------------------------------

/// The domain calendar of a proto calendar.
pub fn calendar_from(
    c: &pb::BusinessCalendar,
    field: &str,
) -> Result<BusinessCalendar, Vec<FieldViolation>> {
    let mut p = Problems::default();
    let mut weekly_hours = Vec::new();
    for (i, w) in c.weekly_hours.iter().enumerate() {
        let time = |s: &str, name: &str, p: &mut Problems| {
            s.parse::<HourMinute>()
                .map_err(|_| {
                    p.push(
                        format!("{field}.weekly_hours[{i}].{name}"),
                        format!("\"{s}\" is not a time (HH:MM)"),
                    )
                })
                .ok()
        };
        let open = time(&w.open, "open", &mut p);
        let close = time(&w.close, "close", &mut p);
        let day = u8::try_from(w.day_of_week).unwrap_or(0);
        if let (Some(open), Some(close)) = (open, close) {
            weekly_hours.push(WeeklyHours {
                day_of_week: day,
                open,
                close,
            });
        }
    }
    let holidays = c
        .holidays
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            date_from(&h.date, &format!("{field}.holidays[{i}].date"), &mut p).map(|date| Holiday {
                date,
                name: h.name.clone(),
            })
        })
        .collect();
    let extra_working_days = c
        .extra_working_days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| date_from(d, &format!("{field}.extra_working_days[{i}]"), &mut p))
        .collect();
    let cal = BusinessCalendar {
        key: c.key.clone(),
        time_zone: c.time_zone.clone(),
        weekly_hours,
        holidays,
        extra_working_days,
    };
    if p.0.is_empty() { Ok(cal) } else { Err(p.0) }
}

/// The proto of a calendar.
pub fn calendar_to(tenant: &str, c: &BusinessCalendar) -> pb::BusinessCalendar {
    pb::BusinessCalendar {
        name: child_name(tenant, "calendars", &c.key),
        key: c.key.clone(),
        time_zone: c.time_zone.clone(),
        weekly_hours: c
            .weekly_hours
            .iter()
            .map(|w| pb::WeeklyHours {
                day_of_week: i32::from(w.day_of_week),
                open: w.open.to_string(),
                close: w.close.to_string(),
            })
            .collect(),
        holidays: c
            .holidays
            .iter()
            .map(|h| pb::Holiday {
                date: h.date.to_string(),
                name: h.name.clone(),
            })
            .collect(),
        extra_working_days: c.extra_working_days.iter().map(|d| d.to_string()).collect(),
        update_time: None,
    }
}

/// Warnings as proto.
pub fn warnings_to(w: Vec<FieldViolation>) -> Vec<cpb::FieldWarning> {
    w.into_iter()
        .map(|w| cpb::FieldWarning {
            field: w.field,
            description: w.description,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_tree_becomes_the_readable_expression_and_back() {
        let expr = filter::parse(r#"channel == "chat" && !(first_reopen_seconds <= 259200) && customer_segment in ["vip", "gold"] && first_response_at != null"#).unwrap();
        let tree = expr_to_condition(&expr);
        let mut p = Problems::default();
        let back = condition_to_expr(&tree, "filter.condition", &mut p).unwrap();
        assert!(p.0.is_empty());
        assert_eq!(back, expr);
    }

    #[test]
    fn a_filter_with_both_forms_must_agree() {
        let tree = Some(expr_to_condition(&filter::parse("resolved").unwrap()));
        let mut p = Problems::default();
        let agreeing = cpb::Filter {
            expression: "resolved".into(),
            condition: tree.clone(),
        };
        assert_eq!(
            filter_from(Some(&agreeing), "indicator.measure.filter", &mut p),
            "resolved"
        );
        assert!(p.0.is_empty());
        let disagreeing = cpb::Filter {
            expression: "!resolved".into(),
            condition: tree,
        };
        filter_from(Some(&disagreeing), "indicator.measure.filter", &mut p);
        assert_eq!(p.0[0].field, "indicator.measure.filter");
    }
}
