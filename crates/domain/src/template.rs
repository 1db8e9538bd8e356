//! Scorecard templates: weighted indicators with scoring rules and targets,
//! veto rules, grade bands, applicability, team roll-up and alert rules;
//! their validation against the indicator catalog, the advisory category
//! weight bands, effective ranges of versions, and which template applies.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::FieldViolation;
use crate::filter::{self, FieldSpec};
use crate::indicator::{Category, check_key};
use crate::rules::{Direction, ScoringRule};
use crate::schema::FieldType;

/// The cohorts an agent can be in.
pub const COHORTS: &[&str] = &["new_hire", "veteran"];
/// Alert severities.
pub const SEVERITIES: &[&str] = &["info", "warning", "critical"];

/// Who a template applies to; empty lists match everyone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    /// Agent roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Team ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Cohorts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cohorts: Vec<String>,
    /// Among templates that apply and are equally specific, the highest priority wins.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub priority: i32,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl Applicability {
    /// Whether a subject with this role, team and cohort is covered.
    pub fn matches(&self, role: &str, team: &str, cohort: &str) -> bool {
        let ok = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        ok(&self.roles, role) && ok(&self.teams, team) && ok(&self.cohorts, cohort)
    }

    /// How many criteria are set: more specific templates win ties.
    pub fn specificity(&self) -> usize {
        [&self.roles, &self.teams, &self.cohorts]
            .iter()
            .filter(|l| !l.is_empty())
            .count()
    }
}

/// A target and rule for one cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortOverride {
    /// The cohort.
    pub cohort: String,
    /// Its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Its scoring rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<ScoringRule>,
}

/// One weighted indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateItem {
    /// The indicator key.
    pub indicator: String,
    /// The indicator version; 0 pins the active one at activation.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub indicator_version: u32,
    /// The weight in percent.
    pub weight: f64,
    /// The scoring rule; none uses the indicator's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<ScoringRule>,
    /// The target; none uses the indicator's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// The minimum sample; 0 uses the indicator's.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub min_sample: u64,
    /// Per-cohort targets and rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cohort_overrides: Vec<CohortOverride>,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// A veto rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VetoRule {
    /// A key unique in the template.
    pub key: String,
    /// What it means.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A condition over indicator keys, e.g. "major_violations >= 1".
    pub condition: String,
    /// Whether the total is forced to 0 as well.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero_total: bool,
}

/// One grade band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeBand {
    /// The grade.
    pub grade: String,
    /// The smallest total earning it.
    pub min_total: f64,
}

/// The default grades: S ≥ 90, A ≥ 80, B ≥ 70, C ≥ 60, D.
pub fn default_grades() -> Vec<GradeBand> {
    [
        ("S", 90.0),
        ("A", 80.0),
        ("B", 70.0),
        ("C", 60.0),
        ("D", 0.0),
    ]
    .into_iter()
    .map(|(grade, min_total)| GradeBand {
        grade: grade.into(),
        min_total,
    })
    .collect()
}

/// How a team scorecard is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollupMode {
    /// From the team's facts (ratio-correct).
    #[default]
    FromFacts,
    /// The cohort-weighted mean of member totals.
    CohortWeightedMean,
}

/// Team roll-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamRollup {
    /// The mode.
    #[serde(default)]
    pub mode: RollupMode,
    /// Cohort weights for the weighted mean.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cohort_weights: BTreeMap<String, f64>,
}

/// Comparison operators of threshold alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOp {
    /// value > threshold
    Gt,
    /// value >= threshold
    Ge,
    /// value < threshold
    Lt,
    /// value <= threshold
    Le,
}

/// What fires an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertCondition {
    /// The indicator worsened this many periods in a row.
    ConsecutiveDecline {
        /// The indicator.
        indicator: String,
        /// At least 2.
        periods: u32,
    },
    /// The indicator crossed a threshold.
    Threshold {
        /// The indicator.
        indicator: String,
        /// The comparison.
        op: AlertOp,
        /// The threshold.
        value: f64,
    },
    /// One indicator rose while another fell.
    Divergence {
        /// The rising indicator.
        rising: String,
        /// The falling indicator.
        falling: String,
    },
}

impl AlertCondition {
    /// The indicators the condition reads.
    pub fn indicators(&self) -> Vec<&str> {
        match self {
            AlertCondition::ConsecutiveDecline { indicator, .. }
            | AlertCondition::Threshold { indicator, .. } => {
                vec![indicator]
            }
            AlertCondition::Divergence { rising, falling } => vec![rising, falling],
        }
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// A key unique in the template.
    pub key: String,
    /// What it means.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// "info", "warning" or "critical".
    pub severity: String,
    /// What fires it.
    pub condition: AlertCondition,
}

/// One template version's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    /// Display names by language tag.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub display_names: BTreeMap<String, String>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The industry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub industry: String,
    /// Who it applies to.
    #[serde(default)]
    pub applicability: Applicability,
    /// The weighted indicators.
    pub items: Vec<TemplateItem>,
    /// Veto rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vetoes: Vec<VetoRule>,
    /// Grade bands; empty means the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<GradeBand>,
    /// Team roll-up.
    #[serde(default)]
    pub team_rollup: TeamRollup,
    /// Alert rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRule>,
    /// The first local date this version applies to.
    pub effective_from: NaiveDate,
    /// The first local date it no longer applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<NaiveDate>,
    /// Pinned indicator versions, set at activation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pinned_indicators: BTreeMap<String, u32>,
}

/// What validation needs to know of one indicator of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct IndicatorFacts {
    /// Its category.
    pub category: Category,
    /// Its direction.
    pub direction: Direction,
    /// Whether it has a default target.
    pub has_default_target: bool,
    /// Whether it has a default scoring rule.
    pub has_default_scoring: bool,
}

const WEIGHT_TOLERANCE: f64 = 1e-9;

impl TemplateDef {
    /// Rewrites veto conditions into canonical form.
    pub fn normalize(&mut self) {
        for veto in &mut self.vetoes {
            if let Ok(expr) = filter::parse(&veto.condition) {
                veto.condition = expr.to_string();
            }
        }
    }

    /// The grade bands in effect, best first.
    pub fn effective_grades(&self) -> Vec<GradeBand> {
        if self.grades.is_empty() {
            default_grades()
        } else {
            self.grades.clone()
        }
    }

    /// Every indicator key the template reads: items, vetoes and alerts.
    pub fn referenced_indicators(&self) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = self.items.iter().map(|i| i.indicator.clone()).collect();
        for veto in &self.vetoes {
            if let Ok(expr) = filter::parse(&veto.condition) {
                keys.extend(expr.fields().into_iter().map(str::to_string));
            }
        }
        for alert in &self.alerts {
            keys.extend(alert.condition.indicators().into_iter().map(str::to_string));
        }
        keys
    }

    /// Every problem with the template, given what the catalog knows of
    /// each indicator key.
    pub fn check(
        &self,
        indicators: &dyn Fn(&str) -> Option<IndicatorFacts>,
    ) -> Vec<FieldViolation> {
        let mut out = Vec::new();
        self.check_items(indicators, &mut out);
        self.check_vetoes(indicators, &mut out);
        self.check_grades(&mut out);
        self.check_applicability(&mut out);
        self.check_rollup(&mut out);
        self.check_alerts(indicators, &mut out);
        if self
            .effective_until
            .is_some_and(|until| until <= self.effective_from)
        {
            out.push(FieldViolation::new(
                "effective_until",
                "must be after effective_from",
            ));
        }
        out
    }

    fn check_items(
        &self,
        indicators: &dyn Fn(&str) -> Option<IndicatorFacts>,
        out: &mut Vec<FieldViolation>,
    ) {
        if self.items.is_empty() {
            out.push(FieldViolation::new(
                "items",
                "a template needs at least one weighted indicator",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, item) in self.items.iter().enumerate() {
            let path = |f: &str| format!("items[{i}].{f}");
            if !seen.insert(item.indicator.as_str()) {
                out.push(FieldViolation::new(
                    path("indicator"),
                    format!("\"{}\" is listed twice", item.indicator),
                ));
            }
            if !(item.weight.is_finite() && item.weight > 0.0) {
                out.push(FieldViolation::new(
                    path("weight"),
                    "a weight must be a positive number",
                ));
            }
            let Some(facts) = indicators(&item.indicator) else {
                out.push(FieldViolation::new(
                    path("indicator"),
                    format!("unknown indicator \"{}\"", item.indicator),
                ));
                continue;
            };
            let has_target = item.target.is_some() || facts.has_default_target;
            match &item.scoring {
                Some(rule) => out.extend(
                    rule.check(facts.direction, has_target)
                        .into_iter()
                        .map(|v| v.nested(&path("scoring"))),
                ),
                None if !facts.has_default_scoring => out.push(FieldViolation::new(
                    path("scoring"),
                    format!(
                        "indicator \"{}\" has no default scoring rule; give one here",
                        item.indicator
                    ),
                )),
                None => {}
            }
            for (j, o) in item.cohort_overrides.iter().enumerate() {
                let opath = format!("items[{i}].cohort_overrides[{j}]");
                if !COHORTS.contains(&o.cohort.as_str()) {
                    out.push(FieldViolation::new(
                        format!("{opath}.cohort"),
                        format!("unknown cohort \"{}\" (known: new_hire, veteran)", o.cohort),
                    ));
                }
                if let Some(rule) = &o.scoring {
                    let has = o.target.is_some() || has_target;
                    out.extend(
                        rule.check(facts.direction, has)
                            .into_iter()
                            .map(|v| v.nested(&format!("{opath}.scoring"))),
                    );
                }
            }
        }
        let sum: f64 = self.items.iter().map(|i| i.weight).sum();
        if !self.items.is_empty() && (sum - 100.0).abs() > WEIGHT_TOLERANCE {
            out.push(FieldViolation::new(
                "items",
                format!("weights sum to {sum}, not 100"),
            ));
        }
    }

    fn check_vetoes(
        &self,
        indicators: &dyn Fn(&str) -> Option<IndicatorFacts>,
        out: &mut Vec<FieldViolation>,
    ) {
        let mut keys = BTreeSet::new();
        for (i, veto) in self.vetoes.iter().enumerate() {
            out.extend(check_key(&format!("vetoes[{i}].key"), &veto.key));
            if !keys.insert(veto.key.as_str()) {
                out.push(FieldViolation::new(
                    format!("vetoes[{i}].key"),
                    format!("\"{}\" is used twice", veto.key),
                ));
            }
            let path = format!("vetoes[{i}].condition");
            match filter::parse(&veto.condition) {
                Err(err) => out.push(FieldViolation::new(
                    path,
                    format!("cannot parse condition: {err}"),
                )),
                Ok(expr) => {
                    let numeric = FieldSpec {
                        field_type: FieldType::Number,
                        values: &[],
                    };
                    for problem in expr.check(&|name: &str| indicators(name).map(|_| numeric)) {
                        out.push(FieldViolation::new(
                            path.clone(),
                            format!("{} (conditions read indicator keys)", problem.description),
                        ));
                    }
                }
            }
        }
    }

    fn check_grades(&self, out: &mut Vec<FieldViolation>) {
        let mut names = BTreeSet::new();
        for (i, band) in self.grades.iter().enumerate() {
            if band.grade.trim().is_empty() || !names.insert(band.grade.as_str()) {
                out.push(FieldViolation::new(
                    format!("grades[{i}].grade"),
                    "grades need distinct, non-blank names",
                ));
            }
            if !(0.0..=100.0).contains(&band.min_total) {
                out.push(FieldViolation::new(
                    format!("grades[{i}].min_total"),
                    "must be between 0 and 100",
                ));
            }
            if i > 0 && band.min_total >= self.grades[i - 1].min_total {
                out.push(FieldViolation::new(
                    format!("grades[{i}].min_total"),
                    "grades go from best to worst, each min_total below the one before",
                ));
            }
        }
        if self.grades.last().is_some_and(|b| b.min_total != 0.0) {
            out.push(FieldViolation::new(
                format!("grades[{}].min_total", self.grades.len() - 1),
                "the lowest grade must start at 0 so every total gets a grade",
            ));
        }
    }

    fn check_applicability(&self, out: &mut Vec<FieldViolation>) {
        for (i, cohort) in self.applicability.cohorts.iter().enumerate() {
            if !COHORTS.contains(&cohort.as_str()) {
                out.push(FieldViolation::new(
                    format!("applicability.cohorts[{i}]"),
                    format!("unknown cohort \"{cohort}\" (known: new_hire, veteran)"),
                ));
            }
        }
        for (list, name) in [
            (&self.applicability.roles, "roles"),
            (&self.applicability.teams, "teams"),
        ] {
            for (i, v) in list.iter().enumerate() {
                if v.trim().is_empty() {
                    out.push(FieldViolation::new(
                        format!("applicability.{name}[{i}]"),
                        "cannot be blank",
                    ));
                }
            }
        }
    }

    fn check_rollup(&self, out: &mut Vec<FieldViolation>) {
        let weights = &self.team_rollup.cohort_weights;
        for (cohort, w) in weights {
            if !COHORTS.contains(&cohort.as_str()) {
                out.push(FieldViolation::new(
                    format!("team_rollup.cohort_weights.{cohort}"),
                    "unknown cohort (known: new_hire, veteran)",
                ));
            }
            if !(w.is_finite() && *w >= 0.0) {
                out.push(FieldViolation::new(
                    format!("team_rollup.cohort_weights.{cohort}"),
                    "a weight must be a non-negative number",
                ));
            }
        }
        if self.team_rollup.mode == RollupMode::CohortWeightedMean
            && weights.values().sum::<f64>() <= 0.0
        {
            out.push(FieldViolation::new(
                "team_rollup.cohort_weights",
                "a cohort-weighted mean needs cohort weights",
            ));
        }
    }

    fn check_alerts(
        &self,
        indicators: &dyn Fn(&str) -> Option<IndicatorFacts>,
        out: &mut Vec<FieldViolation>,
    ) {
        let mut keys = BTreeSet::new();
        for (i, alert) in self.alerts.iter().enumerate() {
            out.extend(check_key(&format!("alerts[{i}].key"), &alert.key));
            if !keys.insert(alert.key.as_str()) {
                out.push(FieldViolation::new(
                    format!("alerts[{i}].key"),
                    format!("\"{}\" is used twice", alert.key),
                ));
            }
            if !SEVERITIES.contains(&alert.severity.as_str()) {
                out.push(FieldViolation::new(
                    format!("alerts[{i}].severity"),
                    "use info, warning or critical",
                ));
            }
            for key in alert.condition.indicators() {
                if indicators(key).is_none() {
                    out.push(FieldViolation::new(
                        format!("alerts[{i}].condition"),
                        format!("unknown indicator \"{key}\""),
                    ));
                }
            }
            match &alert.condition {
                AlertCondition::ConsecutiveDecline { periods, .. } if *periods < 2 => {
                    out.push(FieldViolation::new(
                        format!("alerts[{i}].condition.periods"),
                        "at least 2 periods",
                    ));
                }
                AlertCondition::Threshold { value, .. } if !value.is_finite() => {
                    out.push(FieldViolation::new(
                        format!("alerts[{i}].condition.value"),
                        "must be a finite number",
                    ));
                }
                _ => {}
            }
        }
    }

    /// Advisory problems: category weights outside the advised bands.
    pub fn weight_warnings(
        &self,
        category_of: &dyn Fn(&str) -> Option<Category>,
    ) -> Vec<FieldViolation> {
        let mut per_category: BTreeMap<Category, f64> = BTreeMap::new();
        for item in &self.items {
            if let Some(category) = category_of(&item.indicator) {
                *per_category.entry(category).or_default() += item.weight;
            }
        }
        per_category
            .into_iter()
            .filter_map(|(category, weight)| {
                let (lo, hi) = category.advised_weight_band();
                (weight < lo || weight > hi).then(|| {
                    FieldViolation::new(
                        "items",
                        format!(
                            "{} indicators weigh {weight} %, outside the advised {lo}–{hi} %",
                            category.as_str()
                        ),
                    )
                })
            })
            .collect()
    }
}

/// The effective range of one version: [from, until).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveRange {
    /// The version number.
    pub version: u32,
    /// First date.
    pub from: NaiveDate,
    /// First date after; none is open-ended.
    pub until: Option<NaiveDate>,
}

impl EffectiveRange {
    fn overlaps(&self, other: &EffectiveRange) -> bool {
        let before = |a: &EffectiveRange, b: &EffectiveRange| a.until.is_some_and(|u| u <= b.from);
        !(before(self, other) || before(other, self))
    }

    /// Whether `date` falls in the range.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|u| date < u)
    }
}

/// Plans the activation of `new` among the `active` versions of the same
/// template: an open-ended active version that started earlier is closed at
/// `new.from` (a new version supersedes going forward); any other overlap is
/// refused. Returns the versions to close with their new end.
pub fn plan_activation(
    new: EffectiveRange,
    active: &[EffectiveRange],
) -> Result<Vec<(u32, NaiveDate)>, FieldViolation> {
    let mut closes = Vec::new();
    for other in active.iter().filter(|o| o.version != new.version) {
        if !other.overlaps(&new) {
            continue;
        }
        if other.until.is_none() && other.from < new.from && new.until.is_none() {
            closes.push((other.version, new.from));
        } else {
            let until = other
                .until
                .map_or("open-ended".to_string(), |u| format!("until {u}"));
            return Err(FieldViolation::new(
                "effective_from",
                format!(
                    "effective range overlaps active version {} (from {}, {until}); retire it or set effective ranges that do not overlap",
                    other.version, other.from
                ),
            ));
        }
    }
    Ok(closes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn item(indicator: &str, weight: f64) -> TemplateItem {
        TemplateItem {
            indicator: indicator.into(),
            indicator_version: 0,
            weight,
            scoring: None,
            target: None,
            min_sample: 0,
            cohort_overrides: vec![],
        }
    }

    fn template(items: Vec<TemplateItem>) -> TemplateDef {
        TemplateDef {
            display_names: BTreeMap::new(),
            description: String::new(),
            industry: "finance".into(),
            applicability: Applicability::default(),
            items,
            vetoes: vec![VetoRule {
                key: "major_violation".into(),
                description: String::new(),
                condition: "major_violations >= 1".into(),
                zero_total: false,
            }],
            grades: vec![],
            team_rollup: TeamRollup::default(),
            alerts: vec![],
            effective_from: date("2026-01-01"),
            effective_until: None,
            pinned_indicators: BTreeMap::new(),
        }
    }

    fn catalog(key: &str) -> Option<IndicatorFacts> {
        let category = match key {
            "fcr" => Category::Efficiency,
            "csat_avg" => Category::Outcome,
            "major_violations" | "qa_score" => Category::Behavior,
            _ => return None,
        };
        Some(IndicatorFacts {
            category,
            direction: Direction::HigherIsBetter,
            has_default_target: false,
            has_default_scoring: true,
        })
    }

    #[test]
    fn weights_must_sum_to_exactly_100() {
        let ok = template(vec![item("fcr", 40.0), item("csat_avg", 60.0)]);
        assert_eq!(ok.check(&catalog), vec![]);
        let bad = template(vec![item("fcr", 40.0), item("csat_avg", 55.0)]);
        let v = bad.check(&catalog);
        assert_eq!(
            v,
            vec![FieldViolation::new("items", "weights sum to 95, not 100")]
        );
    }

    #[test]
    fn unknown_indicators_are_named_with_their_path() {
        let mut t = template(vec![item("fcr", 50.0), item("nope", 50.0)]);
        t.vetoes[0].condition = "data_leaks >= 1".into();
        let v = t.check(&catalog);
        assert_eq!(v[0].field, "items[1].indicator");
        assert_eq!(v[1].field, "vetoes[0].condition");
        assert!(v[1].description.contains("data_leaks"), "{v:?}");
    }

    #[test]
    fn category_bands_warn() {
        let t = template(vec![item("fcr", 50.0), item("csat_avg", 50.0)]);
        let w = t.weight_warnings(&|k| catalog(k).map(|f| f.category));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].description
                .contains("efficiency indicators weigh 50 %")
        );
    }

    #[test]
    fn activation_closes_open_predecessors_and_refuses_other_overlaps() {
        let v1 = EffectiveRange {
            version: 1,
            from: date("2026-01-01"),
            until: None,
        };
        let v2 = EffectiveRange {
            version: 2,
            from: date("2026-11-01"),
            until: None,
        };
        assert_eq!(
            plan_activation(v2, &[v1]),
            Ok(vec![(1, date("2026-11-01"))])
        );
        let seasonal = EffectiveRange {
            version: 3,
            from: date("2026-11-01"),
            until: Some(date("2026-12-01")),
        };
        assert!(plan_activation(seasonal, &[v1]).is_err());
        let closed = EffectiveRange {
            version: 1,
            from: date("2026-01-01"),
            until: Some(date("2026-11-01")),
        };
        assert_eq!(plan_activation(seasonal, &[closed]), Ok(vec![]));
        let earlier = EffectiveRange {
            version: 4,
            from: date("2025-06-01"),
            until: None,
        };
        assert!(plan_activation(earlier, &[v1]).is_err());
    }

    #[test]
    fn applicability_matches_and_ranks_by_specificity() {
        let a = Applicability {
            roles: vec!["tier1".into()],
            cohorts: vec!["new_hire".into()],
            ..Default::default()
        };
        assert!(a.matches("tier1", "t-ecom", "new_hire"));
        assert!(!a.matches("tier2", "t-ecom", "new_hire"));
        assert_eq!(a.specificity(), 2);
        assert!(Applicability::default().matches("x", "y", "z"));
    }
}
