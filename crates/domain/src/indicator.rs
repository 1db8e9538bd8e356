//! Indicators: versioned KPI definitions of kind simple (one measure), ratio
//! (numerator ÷ denominator, each aggregated separately so roll-ups stay
//! ratio-correct) or derived (arithmetic over other indicators), and their
//! validation, including cycles among derived indicators.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{FieldViolation, join_path};
use crate::formula;
use crate::measure::{Attribution, Measure, TimeBasis};
use crate::rules::{Direction, ScoringRule};

/// How an indicator combines measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    /// One measure.
    Simple,
    /// Numerator ÷ denominator.
    Ratio,
    /// Arithmetic over other indicators.
    Derived,
}

/// The family an indicator belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Speed and volume.
    Efficiency,
    /// Customer outcomes.
    Outcome,
    /// Service behaviour, quality and compliance.
    Behavior,
    /// Knowledge and skills.
    Capability,
}

impl Category {
    /// The advised share of a template's weight, in percent (warn, never refuse).
    pub fn advised_weight_band(self) -> (f64, f64) {
        match self {
            Category::Outcome => (35.0, 45.0),
            Category::Efficiency => (25.0, 35.0),
            Category::Behavior => (10.0, 20.0),
            Category::Capability => (10.0, 15.0),
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Efficiency => "efficiency",
            Category::Outcome => "outcome",
            Category::Behavior => "behavior",
            Category::Capability => "capability",
        }
    }
}

/// One indicator definition: the body of a version (the key lives beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorDef {
    /// Display names by language tag ("en", "zh").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub display_names: BTreeMap<String, String>,
    /// What it means.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// How measures combine.
    pub kind: IndicatorKind,
    /// Simple: the measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Measure>,
    /// Ratio: the numerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<Measure>,
    /// Ratio: the denominator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<Measure>,
    /// Derived: arithmetic over indicator keys (canonical form once validated).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub formula: String,
    /// Multiplier applied to the value (100 for %, 1/60 for minutes).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scale: f64,
    /// The unit shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Which way is better.
    pub direction: Direction,
    /// The family.
    pub category: Category,
    /// Who gets the credit.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attribution: Attribution,
    /// Calendar or business-hours durations.
    #[serde(default, skip_serializing_if = "is_default")]
    pub time_basis: TimeBasis,
    /// The smallest sample for the value to count.
    #[serde(default, skip_serializing_if = "is_default")]
    pub min_sample: u64,
    /// Divide by the working days of the period.
    #[serde(default, skip_serializing_if = "is_default")]
    pub per_working_day: bool,
    /// The default target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_target: Option<f64>,
    /// The default scoring rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scoring: Option<ScoringRule>,
    /// The business calendar for business-hours time; empty means "default".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub calendar: String,
}

fn one() -> f64 {
    1.0
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The longest a key may be.
pub const MAX_KEY_LEN: usize = 63;

/// Problems with a key: lower_snake_case, starting with a letter or digit.
pub fn check_key(field: &str, key: &str) -> Option<FieldViolation> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !key.starts_with('_');
    (!valid).then(|| {
        FieldViolation::new(
            field,
            format!("\"{key}\" is not a valid key: use 1–{MAX_KEY_LEN} characters of a–z, 0–9 and _, not starting with _"),
        )
    })
}

impl IndicatorDef {
    /// Rewrites filters and formula into canonical form.
    pub fn normalize(&mut self) {
        for m in [
            &mut self.measure,
            &mut self.numerator,
            &mut self.denominator,
        ]
        .into_iter()
        .flatten()
        {
            m.normalize();
        }
        if let Ok(f) = formula::parse_formula(&self.formula) {
            self.formula = f.to_string();
        }
    }

    /// The indicator keys a derived indicator refers to (empty otherwise).
    pub fn formula_refs(&self) -> BTreeSet<String> {
        if self.kind != IndicatorKind::Derived {
            return BTreeSet::new();
        }
        formula::parse_formula(&self.formula)
            .map(|f| f.refs().into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Every problem with the definition on its own (paths relative to it).
    /// References among derived indicators are checked by [`check_derived_graph`].
    pub fn check(&self) -> Vec<FieldViolation> {
        let mut out = Vec::new();
        for (lang, name) in &self.display_names {
            if name.trim().is_empty() {
                out.push(FieldViolation::new(
                    format!("display_names.{lang}"),
                    "a display name cannot be blank",
                ));
            }
        }
        let slots = [
            ("measure", &self.measure),
            ("numerator", &self.numerator),
            ("denominator", &self.denominator),
        ];
        let wanted: &[&str] = match self.kind {
            IndicatorKind::Simple => &["measure"],
            IndicatorKind::Ratio => &["numerator", "denominator"],
            IndicatorKind::Derived => &[],
        };
        for (name, slot) in slots {
            match (wanted.contains(&name), slot) {
                (true, None) => out.push(FieldViolation::new(
                    name,
                    format!("a {:?} indicator needs a {name}", self.kind).to_lowercase(),
                )),
                (false, Some(_)) => out.push(FieldViolation::new(
                    name,
                    format!("a {:?} indicator takes no {name}", self.kind).to_lowercase(),
                )),
                (true, Some(m)) => {
                    out.extend(m.check(self.time_basis).into_iter().map(|v| v.nested(name)));
                    if !self.attribution.fits(m.fact_type) {
                        out.push(FieldViolation::new(
                            "attribution",
                            format!(
                                "{:?} attribution does not apply to {} facts",
                                self.attribution,
                                m.fact_type.as_str()
                            ),
                        ));
                    }
                }
                (false, None) => {}
            }
        }
        if let (Some(n), Some(d)) = (&self.numerator, &self.denominator)
            && n.fact_type != d.fact_type
        {
            {
                out.push(FieldViolation::new(
                    "denominator.fact_type",
                    "numerator and denominator must count the same fact type, so that roll-ups stay ratio-correct",
                ));
            }
        }
        match (self.kind, self.formula.trim().is_empty()) {
            (IndicatorKind::Derived, true) => out.push(FieldViolation::new(
                "formula",
                "a derived indicator needs a formula",
            )),
            (IndicatorKind::Derived, false) => {
                if let Err(err) = formula::parse_formula(&self.formula) {
                    out.push(FieldViolation::new(
                        "formula",
                        format!("cannot parse formula: {err}"),
                    ));
                }
            }
            (_, false) => out.push(FieldViolation::new(
                "formula",
                "only a derived indicator takes a formula",
            )),
            (_, true) => {}
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            out.push(FieldViolation::new(
                "scale",
                "scale must be a finite, non-zero number",
            ));
        }
        if self.default_target.is_some_and(|t| !t.is_finite()) {
            out.push(FieldViolation::new(
                "default_target",
                "must be a finite number",
            ));
        }
        if let Some(rule) = &self.default_scoring {
            let has_target = self.default_target.is_some();
            out.extend(
                rule.check(self.direction, has_target)
                    .into_iter()
                    .map(|v| v.nested("default_scoring")),
            );
        }
        if !self.calendar.is_empty() {
            out.extend(check_key("calendar", &self.calendar));
        }
        out
    }
}

/// Checks the derived indicators of a whole catalog: every reference names a
/// known indicator and no indicator depends on itself. `defs` maps keys to
/// definitions; violations are reported under `path_of(key)`.
pub fn check_derived_graph(
    defs: &BTreeMap<String, &IndicatorDef>,
    path_of: &dyn Fn(&str) -> String,
) -> Vec<FieldViolation> {
    let mut out = Vec::new();
    for (key, def) in defs {
        for r in def.formula_refs() {
            if !defs.contains_key(&r) {
                out.push(FieldViolation::new(
                    join_path(&path_of(key), "formula"),
                    format!("unknown indicator \"{r}\""),
                ));
            }
        }
    }
    for key in defs.keys() {
        if let Some(cycle) = find_cycle(key, defs) {
            out.push(FieldViolation::new(
                join_path(&path_of(key), "formula"),
                format!("derived indicators form a cycle: {}", cycle.join(" → ")),
            ));
        }
    }
    out
}

/// A dependency path from `start` back to itself, if there is one.
fn find_cycle(start: &str, defs: &BTreeMap<String, &IndicatorDef>) -> Option<Vec<String>> {
    fn walk(
        node: &str,
        start: &str,
        defs: &BTreeMap<String, &IndicatorDef>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let Some(def) = defs.get(node) else {
            return false;
        };
        for next in def.formula_refs() {
            if next == start {
                path.push(next);
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(&next, start, defs, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(start, start, defs, &mut path, &mut seen).then_some(path)
}

/// The keys `roots` need, with every indicator derived ones refer to, transitively.
pub fn dependency_closure<'a>(
    roots: impl IntoIterator<Item = &'a str>,
    defs: &dyn Fn(&str) -> Option<BTreeSet<String>>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().map(str::to_string).collect();
    while let Some(key) = stack.pop() {
        if out.insert(key.clone()) {
            stack.extend(defs(&key).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Aggregation;
    use crate::schema::FactType;

    fn fcr_chat_3d() -> IndicatorDef {
        IndicatorDef {
            display_names: BTreeMap::from([("en".into(), "FCR, 3-day window, chat".into())]),
            description: String::new(),
            kind: IndicatorKind::Ratio,
            measure: None,
            numerator: Some(Measure::count(
                FactType::Ticket,
                "resolved && channel == \"chat\" && !(first_reopen_seconds <= 259200) && !(next_contact_gap_seconds <= 259200)",
            )),
            denominator: Some(Measure::count(
                FactType::Ticket,
                "resolved && channel == \"chat\"",
            )),
            formula: String::new(),
            scale: 100.0,
            unit: "%".into(),
            direction: Direction::HigherIsBetter,
            category: Category::Efficiency,
            attribution: Attribution::ResolvingAgent,
            time_basis: TimeBasis::Calendar,
            min_sample: 10,
            per_working_day: false,
            default_target: Some(80.0),
            default_scoring: Some(ScoringRule::Linear {
                worst: 50.0,
                best: 90.0,
            }),
            calendar: String::new(),
        }
    }

    fn paths(v: &[FieldViolation]) -> Vec<&str> {
        v.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_well_formed_ratio_passes() {
        assert_eq!(fcr_chat_3d().check(), vec![]);
    }

    #[test]
    fn unknown_field_and_misfit_aggregation_name_their_paths() {
        let mut def = fcr_chat_3d();
        def.kind = IndicatorKind::Simple;
        def.numerator = None;
        def.denominator = None;
        def.measure = Some(Measure {
            fact_type: FactType::Ticket,
            aggregation: Aggregation::Mean,
            field: "channel".into(),
            percentile: 0.0,
            filter: "chanel == \"chat\"".into(),
            time_field: String::new(),
        });
        let v = def.check();
        assert_eq!(paths(&v), vec!["measure.field", "measure.filter"], "{v:?}");
        assert!(
            v[0].description.contains("mean does not fit an enum field"),
            "{v:?}"
        );
        assert!(v[1].description.contains("chanel"), "{v:?}");
    }

    #[test]
    fn cycles_among_derived_indicators_are_found() {
        let derived = |formula: &str| IndicatorDef {
            kind: IndicatorKind::Derived,
            numerator: None,
            denominator: None,
            formula: formula.into(),
            ..fcr_chat_3d()
        };
        let a = derived("b + 1");
        let b = derived("c * 2");
        let c = derived("a - 1");
        let d = derived("missing / 2");
        let defs = BTreeMap::from([
            ("a".to_string(), &a),
            ("b".to_string(), &b),
            ("c".to_string(), &c),
            ("d".to_string(), &d),
        ]);
        let v = check_derived_graph(&defs, &|k| format!("indicators.{k}"));
        assert!(
            v.iter()
                .any(|v| v.field == "indicators.a.formula"
                    && v.description.contains("a → b → c → a")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.field == "indicators.d.formula"
                && v.description.contains("unknown indicator \"missing\"")),
            "{v:?}"
        );
        assert_eq!(v.len(), 4, "{v:?}");
    }

    #[test]
    fn keys_are_lower_snake_case() {
        assert!(check_key("key", "fcr_3d_chat").is_none());
        assert!(check_key("key", "FCR").is_some());
        assert!(check_key("key", "").is_some());
        assert!(check_key("key", "_x").is_some());
    }
}
