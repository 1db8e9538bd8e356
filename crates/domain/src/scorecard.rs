//! The scoring math of DOMAIN.md §5, free of I/O: indicator values from
//! measure aggregates, minimum samples, Wilson intervals, scores by rule,
//! weights re-normalised over the sufficient indicators, vetoes, grades, and
//! the cohort-weighted team roll-up. Every number is f64 and unrounded.

use std::collections::BTreeMap;

use crate::filter::{self, Value};
use crate::formula;
use crate::indicator::{IndicatorDef, IndicatorKind};
use crate::rules::RuleOutcome;
use crate::template::{GradeBand, TemplateDef, TemplateItem};

/// z for a 95 % interval.
pub const Z_95: f64 = 1.96;

/// One aggregate as data-ingestion returns it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Aggregate {
    /// The aggregate; none when no fact matched (e.g. a mean of nothing).
    pub value: Option<f64>,
    /// The number of facts aggregated.
    pub count: i64,
}

/// The aggregates of an indicator's measures for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeasureValues {
    /// Simple: the measure; ratio: the numerator.
    pub primary: Aggregate,
    /// Ratio: the denominator.
    pub denominator: Aggregate,
}

/// An indicator's value for one subject and period, before scoring.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndicatorValue {
    /// The value in the indicator's unit (after scale and per-working-day).
    pub value: Option<f64>,
    /// The numerator (ratio) or the aggregate (simple), unscaled.
    pub numerator: Option<f64>,
    /// The denominator (ratio), unscaled.
    pub denominator: Option<f64>,
    /// The sample size: the denominator's count, or the number of facts.
    pub sample: i64,
    /// The 95 % Wilson interval, for rates of counts.
    pub interval: Option<(f64, f64)>,
}

/// The Wilson score interval of `successes` out of `n`, as proportions.
pub fn wilson(successes: f64, n: f64, z: f64) -> Option<(f64, f64)> {
    if n <= 0.0 || successes < 0.0 || successes > n {
        return None;
    }
    let p = successes / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

/// The value of a simple or ratio indicator from its aggregates;
/// `working_days` divides per-working-day indicators.
pub fn measured_value(def: &IndicatorDef, m: &MeasureValues, working_days: u32) -> IndicatorValue {
    let per_day = |v: f64| {
        if def.per_working_day {
            if working_days == 0 {
                None
            } else {
                Some(v / f64::from(working_days))
            }
        } else {
            Some(v)
        }
    };
    match def.kind {
        IndicatorKind::Simple | IndicatorKind::Derived => IndicatorValue {
            value: m.primary.value.and_then(per_day).map(|v| v * def.scale),
            numerator: m.primary.value,
            denominator: None,
            sample: m.primary.count,
            interval: None,
        },
        IndicatorKind::Ratio => {
            let num = m.primary.value.unwrap_or(0.0);
            let den = m.denominator.value.unwrap_or(0.0);
            let value = (den != 0.0)
                .then(|| num / den)
                .and_then(per_day)
                .map(|v| v * def.scale);
            // A rate of counts (both sides counts, numerator within the
            // denominator) gets a Wilson interval.
            let counts = def
                .numerator
                .as_ref()
                .is_some_and(|n| n.aggregation == crate::measure::Aggregation::Count)
                && def
                    .denominator
                    .as_ref()
                    .is_some_and(|d| d.aggregation == crate::measure::Aggregation::Count);
            let interval = if counts && !def.per_working_day {
                wilson(num, den, Z_95).map(|(lo, hi)| (lo * def.scale, hi * def.scale))
            } else {
                None
            };
            IndicatorValue {
                value,
                numerator: Some(num),
                denominator: Some(den),
                sample: m.denominator.count,
                interval,
            }
        }
    }
}

/// The value of a derived indicator from the values of those it refers to;
/// its sample is the smallest of theirs.
pub fn derived_value(
    def: &IndicatorDef,
    inputs: &BTreeMap<String, IndicatorValue>,
) -> IndicatorValue {
    let Ok(f) = formula::parse_formula(&def.formula) else {
        return IndicatorValue::default();
    };
    let value = f
        .eval(&|k| inputs.get(k).and_then(|v| v.value))
        .map(|v| v * def.scale);
    let sample = f
        .refs()
        .iter()
        .filter_map(|k| inputs.get(*k))
        .map(|v| v.sample)
        .min()
        .unwrap_or(0);
    IndicatorValue {
        value,
        numerator: None,
        denominator: None,
        sample,
        interval: None,
    }
}

/// One scored line of a scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredItem {
    /// The indicator key.
    pub indicator: String,
    /// Its value.
    pub value: IndicatorValue,
    /// The minimum sample in force.
    pub min_sample: u64,
    /// Whether the sample reached it (and there is a value).
    pub sufficient: bool,
    /// The target in force.
    pub target: Option<f64>,
    /// Whether the target was met.
    pub target_met: Option<bool>,
    /// Points 0–100 when sufficient.
    pub score: Option<f64>,
    /// The band or verdict reached.
    pub band: String,
    /// The template weight.
    pub weight: f64,
    /// The weight after re-normalisation (0 when insufficient).
    pub effective_weight: f64,
    /// effective_weight × score / 100.
    pub contribution: f64,
    /// Why, in words.
    pub reason: String,
}

/// A veto that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredVeto {
    /// The rule key.
    pub rule: String,
    /// The condition.
    pub condition: String,
    /// The indicator values it read.
    pub values: BTreeMap<String, f64>,
    /// Whether the total is forced to 0.
    pub zero_total: bool,
}

/// The scored scorecard of one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The lines, in template order.
    pub items: Vec<ScoredItem>,
    /// The weighted total 0–100.
    pub total: f64,
    /// The grade.
    pub grade: String,
    /// The vetoes that fired.
    pub vetoes: Vec<FiredVeto>,
    /// Notes for readers.
    pub notes: Vec<String>,
}

/// The target and rule in force for an item and a cohort.
fn item_terms<'a>(
    item: &'a TemplateItem,
    def: &'a IndicatorDef,
    cohort: &str,
) -> (Option<f64>, Option<&'a crate::rules::ScoringRule>) {
    let o = item.cohort_overrides.iter().find(|o| o.cohort == cohort);
    let target = o
        .and_then(|o| o.target)
        .or(item.target)
        .or(def.default_target);
    let rule = o
        .and_then(|o| o.scoring.as_ref())
        .or(item.scoring.as_ref())
        .or(def.default_scoring.as_ref());
    (target, rule)
}

/// Scores a subject: `values` holds every indicator the template reads
/// (items and vetoes), `defs` their definitions, `cohort` the subject's cohort.
pub fn score(
    template: &TemplateDef,
    defs: &BTreeMap<String, IndicatorDef>,
    values: &BTreeMap<String, IndicatorValue>,
    cohort: &str,
) -> Scored {
    let mut items = Vec::with_capacity(template.items.len());
    let mut notes = Vec::new();
    for item in &template.items {
        let value = values.get(&item.indicator).cloned().unwrap_or_default();
        let Some(def) = defs.get(&item.indicator) else {
            notes.push(format!(
                "{}: definition missing; not scored",
                item.indicator
            ));
            continue;
        };
        let min_sample = if item.min_sample > 0 {
            item.min_sample
        } else {
            def.min_sample
        };
        let sufficient =
            value.value.is_some() && value.sample >= 0 && value.sample as u64 >= min_sample;
        let (target, rule) = item_terms(item, def, cohort);
        let target_met = match (value.value, target) {
            (Some(v), Some(t)) => Some(def.direction.at_least_as_good(v, t)),
            _ => None,
        };
        let outcome: Option<RuleOutcome> = match (sufficient, value.value, rule) {
            (true, Some(v), Some(rule)) => rule.score(v, def.direction, target),
            _ => None,
        };
        let reason = match (&value.value, sufficient, &outcome) {
            (None, _, _) => "no data in the period".to_string(),
            (Some(_), false, _) => format!(
                "sample {} below the minimum of {min_sample}: not scored, weight shared",
                value.sample
            ),
            (Some(v), true, Some(o)) => format!(
                "value {} scores {} points{}",
                readable(*v),
                readable(o.score),
                if o.band.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", o.band)
                }
            ),
            (Some(_), true, None) => "no scoring rule or target to score against".to_string(),
        };
        items.push(ScoredItem {
            indicator: item.indicator.clone(),
            sufficient: sufficient && outcome.is_some(),
            score: outcome.as_ref().map(|o| o.score),
            band: outcome.map(|o| o.band).unwrap_or_default(),
            value,
            min_sample,
            target,
            target_met,
            weight: item.weight,
            effective_weight: 0.0,
            contribution: 0.0,
            reason,
        });
    }
    let scored_weight: f64 = items
        .iter()
        .filter(|i| i.sufficient)
        .map(|i| i.weight)
        .sum();
    for i in items.iter_mut().filter(|i| i.sufficient) {
        i.effective_weight = i.weight * 100.0 / scored_weight;
        i.contribution = i.effective_weight * i.score.unwrap_or(0.0) / 100.0;
    }
    let mut total: f64 = items.iter().map(|i| i.contribution).sum();
    let shared: Vec<&str> = items
        .iter()
        .filter(|i| !i.sufficient)
        .map(|i| i.indicator.as_str())
        .collect();
    if !shared.is_empty() && scored_weight > 0.0 {
        notes.push(format!(
            "{} not scored; their weight is shared among the others in proportion to their weights",
            shared.join(", ")
        ));
    }
    if scored_weight == 0.0 {
        notes.push("no indicator had enough data to score; the total is 0".to_string());
    }
    let vetoes = fired_vetoes(template, values);
    let grades = template.effective_grades();
    let mut grade = grade_of(&grades, total);
    if !vetoes.is_empty() {
        grade = grades.last().map(|g| g.grade.clone()).unwrap_or_default();
        if vetoes.iter().any(|v| v.zero_total) {
            total = 0.0;
        }
        notes.push(format!(
            "veto {} fired: grade forced to {grade}",
            vetoes
                .iter()
                .map(|v| v.rule.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Scored {
        items,
        total,
        grade,
        vetoes,
        notes,
    }
}

/// The vetoes whose condition holds on the subject's indicator values.
pub fn fired_vetoes(
    template: &TemplateDef,
    values: &BTreeMap<String, IndicatorValue>,
) -> Vec<FiredVeto> {
    template
        .vetoes
        .iter()
        .filter_map(|rule| {
            let expr = filter::parse(&rule.condition).ok()?;
            let get = |k: &str| {
                values
                    .get(k)
                    .and_then(|v| v.value)
                    .map_or(Value::Null, Value::Number)
            };
            expr.eval(&get).then(|| FiredVeto {
                rule: rule.key.clone(),
                condition: rule.condition.clone(),
                values: expr
                    .fields()
                    .into_iter()
                    .filter_map(|k| {
                        values
                            .get(k)
                            .and_then(|v| v.value)
                            .map(|v| (k.to_string(), v))
                    })
                    .collect(),
                zero_total: rule.zero_total,
            })
        })
        .collect()
}

/// The grade of a total: the first band (best first) it reaches.
pub fn grade_of(grades: &[GradeBand], total: f64) -> String {
    grades
        .iter()
        .find(|g| total >= g.min_total)
        .or(grades.last())
        .map(|g| g.grade.clone())
        .unwrap_or_default()
}

/// A team total as the cohort-weighted mean of its members' totals: the
/// mean total of each cohort present, weighted by the cohort weights
/// (re-normalised over the cohorts present).
pub fn cohort_weighted_mean(
    members: &[(String, f64)],
    weights: &BTreeMap<String, f64>,
) -> Option<f64> {
    let mut per_cohort: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (cohort, total) in members {
        let e = per_cohort.entry(cohort.as_str()).or_default();
        e.0 += total;
        e.1 += 1;
    }
    let mut weighted = 0.0;
    let mut weight = 0.0;
    for (cohort, (sum, n)) in per_cohort {
        let w = weights.get(cohort).copied().unwrap_or(0.0);
        weighted += w * sum / n as f64;
        weight += w;
    }
    (weight > 0.0).then(|| weighted / weight)
}

/// A number as a reason's words print it: two decimals at most from 1 up,
/// three significant digits below, trailing zeros dropped (63.04, 100,
/// 0.0123). The proto fields carry the exact values; this is for reading.
pub fn readable(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return v.to_string();
    }
    let decimals = if v.abs() >= 1.0 {
        2
    } else {
        (2 - v.abs().log10().floor() as i64).clamp(0, 15) as usize
    };
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::Category;
    use crate::measure::{Attribution, Measure, TimeBasis};
    use crate::rules::{Direction, ScoringRule};
    use crate::schema::FactType;
    use crate::template::{Applicability, TeamRollup, VetoRule, default_grades};
    use proptest::prelude::*;

    #[test]
    fn reasons_print_numbers_readably() {
        let cases = [
            (63.035019455252915, "63.04"),
            (100.0, "100"),
            (87.5, "87.5"),
            (-12.345, "-12.35"),
            (0.012345, "0.0123"),
            (0.5, "0.5"),
            (0.99999, "1"),
            (0.0, "0"),
            (f64::INFINITY, "inf"),
        ];
        for (v, words) in cases {
            assert_eq!(readable(v), words, "{v}");
        }
    }

    fn ratio(scale: f64) -> IndicatorDef {
        IndicatorDef {
            display_names: BTreeMap::new(),
            description: String::new(),
            kind: IndicatorKind::Ratio,
            measure: None,
            numerator: Some(Measure::count(FactType::Ticket, "resolved")),
            denominator: Some(Measure::count(FactType::Ticket, "")),
            formula: String::new(),
            scale,
            unit: "%".into(),
            direction: Direction::HigherIsBetter,
            category: Category::Efficiency,
            attribution: Attribution::Default,
            time_basis: TimeBasis::Calendar,
            min_sample: 0,
            per_working_day: false,
            default_target: None,
            default_scoring: Some(ScoringRule::Linear {
                worst: 50.0,
                best: 90.0,
            }),
            calendar: String::new(),
        }
    }

    fn agg(value: f64, count: i64) -> Aggregate {
        Aggregate {
            value: Some(value),
            count,
        }
    }

    #[test]
    fn wilson_matches_a_hand_computed_interval() {
        // 8 of 10: p = .8, z = 1.96 → centre .7167, half .2256 (to 4 places).
        let (lo, hi) = wilson(8.0, 10.0, Z_95).unwrap();
        assert!((lo - 0.4902).abs() < 1e-4, "{lo}");
        assert!((hi - 0.9433).abs() < 1e-4, "{hi}");
        assert_eq!(wilson(1.0, 0.0, Z_95), None);
    }

    #[test]
    fn a_ratio_is_scaled_and_carries_its_interval() {
        let v = measured_value(
            &ratio(100.0),
            &MeasureValues {
                primary: agg(8.0, 8),
                denominator: agg(10.0, 10),
            },
            20,
        );
        assert_eq!(v.value, Some(80.0));
        assert_eq!(
            (v.numerator, v.denominator, v.sample),
            (Some(8.0), Some(10.0), 10)
        );
        let (lo, hi) = v.interval.unwrap();
        assert!((lo - 49.02).abs() < 1e-2 && (hi - 94.33).abs() < 1e-2);
        // Nothing in the denominator: no value.
        let v = measured_value(
            &ratio(100.0),
            &MeasureValues {
                primary: agg(0.0, 0),
                denominator: agg(0.0, 0),
            },
            20,
        );
        assert_eq!(v.value, None);
    }

    #[test]
    fn per_working_day_divides_by_the_working_days() {
        let mut def = ratio(1.0);
        def.kind = IndicatorKind::Simple;
        def.per_working_day = true;
        let v = measured_value(
            &def,
            &MeasureValues {
                primary: agg(1760.0, 1760),
                ..Default::default()
            },
            22,
        );
        assert_eq!(v.value, Some(80.0));
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

    fn template(items: Vec<TemplateItem>, vetoes: Vec<VetoRule>) -> TemplateDef {
        TemplateDef {
            display_names: BTreeMap::new(),
            description: String::new(),
            industry: String::new(),
            applicability: Applicability::default(),
            items,
            vetoes,
            grades: vec![],
            team_rollup: TeamRollup::default(),
            alerts: vec![],
            effective_from: "2026-01-01".parse().unwrap(),
            effective_until: None,
            pinned_indicators: BTreeMap::new(),
        }
    }

    fn value(v: f64, sample: i64) -> IndicatorValue {
        IndicatorValue {
            value: Some(v),
            sample,
            ..Default::default()
        }
    }

    #[test]
    fn an_insufficient_indicator_shares_its_weight_by_hand() {
        // a: 70 % → (70−50)/40 = 50 points; b: 90 % → 100 points; c needs 10 responses, has 3.
        let mut c = ratio(100.0);
        c.min_sample = 10;
        let defs = BTreeMap::from([
            ("a".to_string(), ratio(100.0)),
            ("b".to_string(), ratio(100.0)),
            ("c".to_string(), c),
        ]);
        let values = BTreeMap::from([
            ("a".to_string(), value(70.0, 40)),
            ("b".to_string(), value(90.0, 40)),
            ("c".to_string(), value(80.0, 3)),
        ]);
        let t = template(
            vec![item("a", 30.0), item("b", 20.0), item("c", 50.0)],
            vec![],
        );
        let s = score(&t, &defs, &values, "veteran");
        // Weights 30 and 20 become 60 and 40; total = 60 × .5 + 40 × 1 = 70.
        assert_eq!(s.items[0].effective_weight, 60.0);
        assert_eq!(s.items[1].effective_weight, 40.0);
        assert_eq!(
            (
                s.items[2].effective_weight,
                s.items[2].score,
                s.items[2].sufficient
            ),
            (0.0, None, false)
        );
        assert_eq!(s.total, 70.0);
        assert_eq!(s.grade, "B");
        assert!(s.notes[0].contains("c not scored"));
    }

    #[test]
    fn a_veto_forces_the_lowest_grade_and_optionally_zero() {
        let defs = BTreeMap::from([
            ("a".to_string(), ratio(100.0)),
            ("major".to_string(), ratio(1.0)),
        ]);
        let values = BTreeMap::from([
            ("a".to_string(), value(90.0, 40)),
            ("major".to_string(), value(1.0, 1)),
        ]);
        let veto = |zero| VetoRule {
            key: "major_violation".into(),
            description: String::new(),
            condition: "major >= 1".into(),
            zero_total: zero,
        };
        let s = score(
            &template(vec![item("a", 100.0)], vec![veto(false)]),
            &defs,
            &values,
            "veteran",
        );
        assert_eq!((s.total, s.grade.as_str()), (100.0, "D"));
        assert_eq!(
            s.vetoes[0].values,
            BTreeMap::from([("major".to_string(), 1.0)])
        );
        let s = score(
            &template(vec![item("a", 100.0)], vec![veto(true)]),
            &defs,
            &values,
            "veteran",
        );
        assert_eq!((s.total, s.grade.as_str()), (0.0, "D"));
    }

    #[test]
    fn cohort_weighted_means_weigh_cohorts_not_heads() {
        let members = vec![
            ("new_hire".to_string(), 60.0),
            ("veteran".to_string(), 80.0),
            ("veteran".to_string(), 90.0),
        ];
        let weights = BTreeMap::from([
            ("new_hire".to_string(), 30.0),
            ("veteran".to_string(), 70.0),
        ]);
        // 0.3 × 60 + 0.7 × 85 = 77.5
        assert_eq!(cohort_weighted_mean(&members, &weights), Some(77.5));
        // Only veterans present: their mean.
        assert_eq!(cohort_weighted_mean(&members[1..], &weights), Some(85.0));
    }

    /// A template of `cases.len()` ratio items `k0, k1, …` with the given
    /// weights, and their values (a sample of 0 leaves an item insufficient).
    fn scored_inputs(
        cases: &[(u32, f64, i64)],
    ) -> (
        TemplateDef,
        BTreeMap<String, IndicatorDef>,
        BTreeMap<String, IndicatorValue>,
    ) {
        let mut defs = BTreeMap::new();
        let mut values = BTreeMap::new();
        let mut items = Vec::new();
        for (i, (weight, v, sample)) in cases.iter().enumerate() {
            let key = format!("k{i}");
            let mut def = ratio(100.0);
            def.min_sample = 1;
            defs.insert(key.clone(), def);
            values.insert(key.clone(), value(*v, *sample));
            items.push(item(&key, f64::from(*weight)));
        }
        (template(items, vec![]), defs, values)
    }

    /// The position of a grade in the default bands, best first.
    fn grade_rank(grade: &str) -> usize {
        default_grades()
            .iter()
            .position(|g| g.grade == grade)
            .expect("a default grade")
    }

    proptest! {
        #[test]
        fn linear_scores_are_monotonic_in_the_actual_value(
            worst in -1000.0f64..1000.0,
            span in 0.001f64..1000.0,
            lower_is_better in any::<bool>(),
            a in -3000.0f64..3000.0,
            b in -3000.0f64..3000.0,
        ) {
            // For lower-is-better the rule runs from a high worst to a low best.
            let (direction, rule) = if lower_is_better {
                (Direction::LowerIsBetter, ScoringRule::Linear { worst: worst + span, best: worst })
            } else {
                (Direction::HigherIsBetter, ScoringRule::Linear { worst, best: worst + span })
            };
            let (better, worse) = if direction.at_least_as_good(a, b) { (a, b) } else { (b, a) };
            let s_better = rule.score(better, direction, None).unwrap().score;
            let s_worse = rule.score(worse, direction, None).unwrap().score;
            prop_assert!(s_better >= s_worse, "{better} scored {s_better} < {worse} scored {s_worse}");
            prop_assert!((0.0..=100.0).contains(&s_better) && (0.0..=100.0).contains(&s_worse));
        }

        #[test]
        fn effective_weights_sum_to_100(weights in proptest::collection::vec(1u32..60, 1..8), present in proptest::collection::vec(any::<bool>(), 8)) {
            let total: u32 = weights.iter().sum();
            // Scale to exactly 100 by putting the remainder on the last item.
            let mut w: Vec<f64> = weights.iter().map(|w| f64::from(*w) * 100.0 / f64::from(total)).collect();
            let rest = 100.0 - w[..w.len() - 1].iter().sum::<f64>();
            if let Some(last) = w.last_mut() { *last = rest; }
            let keys: Vec<String> = (0..w.len()).map(|i| format!("k{i}")).collect();
            let defs: BTreeMap<String, IndicatorDef> = keys.iter().map(|k| (k.clone(), ratio(100.0))).collect();
            let values: BTreeMap<String, IndicatorValue> = keys.iter().zip(&present).filter(|(_, p)| **p).map(|(k, _)| (k.clone(), value(70.0, 50))).collect();
            let t = template(keys.iter().zip(&w).map(|(k, w)| item(k, *w)).collect(), vec![]);
            let s = score(&t, &defs, &values, "veteran");
            let sum: f64 = s.items.iter().map(|i| i.effective_weight).sum();
            if s.items.iter().any(|i| i.sufficient) {
                prop_assert!((sum - 100.0).abs() < 1e-9, "{sum}");
            } else {
                prop_assert_eq!(sum, 0.0);
            }
        }

        #[test]
        fn a_team_ratio_is_the_ratio_of_summed_parts(parts in proptest::collection::vec((0u32..50, 1u32..50), 1..10)) {
            // Members' numerators never exceed their denominators.
            let parts: Vec<(f64, f64)> = parts.into_iter().map(|(n, d)| (f64::from(n.min(d)), f64::from(d))).collect();
            let (num, den) = parts.iter().fold((0.0, 0.0), |(a, b), (n, d)| (a + n, b + d));
            let team = measured_value(&ratio(100.0), &MeasureValues { primary: agg(num, num as i64), denominator: agg(den, den as i64) }, 20);
            prop_assert!((team.value.unwrap() - num / den * 100.0).abs() < 1e-9);
        }

        #[test]
        fn the_total_is_the_weighted_mean_of_the_scored_items(
            cases in proptest::collection::vec((1u32..60, 0.0f64..100.0, 0i64..5), 1..8),
        ) {
            let (t, defs, values) = scored_inputs(&cases);
            let s = score(&t, &defs, &values, "veteran");
            let scored: Vec<(f64, f64)> = s
                .items
                .iter()
                .filter(|i| i.sufficient)
                .map(|i| (i.weight, i.score.unwrap()))
                .collect();
            let weight: f64 = scored.iter().map(|(w, _)| w).sum();
            if scored.is_empty() {
                prop_assert_eq!(s.total, 0.0);
            } else {
                let mean = scored.iter().map(|(w, x)| w * x).sum::<f64>() / weight;
                prop_assert!((s.total - mean).abs() < 1e-9, "total {} vs mean {mean}", s.total);
                let lo = scored.iter().map(|(_, x)| *x).fold(f64::INFINITY, f64::min);
                let hi = scored.iter().map(|(_, x)| *x).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(s.total >= lo - 1e-9 && s.total <= hi + 1e-9);
            }
        }

        #[test]
        fn the_order_of_template_items_does_not_change_the_result(
            cases in proptest::collection::vec((1u32..60, 0.0f64..100.0, 0i64..5), 1..8),
            rotate in 0usize..8,
        ) {
            let (t, defs, values) = scored_inputs(&cases);
            let mut reordered = t.clone();
            reordered.items.reverse();
            let len = reordered.items.len();
            reordered.items.rotate_left(rotate % len);
            let a = score(&t, &defs, &values, "veteran");
            let b = score(&reordered, &defs, &values, "veteran");
            prop_assert!((a.total - b.total).abs() < 1e-9, "{} vs {}", a.total, b.total);
            prop_assert_eq!(a.grade, b.grade);
        }

        #[test]
        fn a_better_value_never_lowers_the_total_or_the_grade(
            cases in proptest::collection::vec((1u32..60, 0.0f64..100.0, 1i64..5), 1..8),
            which in 0usize..8,
            gain in 0.0f64..50.0,
        ) {
            let (t, defs, values) = scored_inputs(&cases);
            let key = format!("k{}", which % cases.len());
            let mut improved = values.clone();
            let v = improved.get_mut(&key).unwrap();
            v.value = v.value.map(|x| x + gain);
            let before = score(&t, &defs, &values, "veteran");
            let after = score(&t, &defs, &improved, "veteran");
            prop_assert!(after.total >= before.total - 1e-9, "{} < {}", after.total, before.total);
            prop_assert!(grade_rank(&after.grade) <= grade_rank(&before.grade));
        }

        #[test]
        fn a_cohort_weighted_mean_lies_between_the_member_totals(
            members in proptest::collection::vec((0usize..3, 0.0f64..100.0), 1..12),
            weights in proptest::collection::vec(0.0f64..100.0, 3),
        ) {
            let cohorts = ["new_hire", "veteran", "contractor"];
            let members: Vec<(String, f64)> =
                members.iter().map(|(c, t)| (cohorts[*c].to_string(), *t)).collect();
            let weights: BTreeMap<String, f64> =
                cohorts.iter().zip(&weights).map(|(c, w)| (c.to_string(), *w)).collect();
            let present_weight: f64 = weights
                .iter()
                .filter(|(c, _)| members.iter().any(|(m, _)| m == *c))
                .map(|(_, w)| w)
                .sum();
            match cohort_weighted_mean(&members, &weights) {
                None => prop_assert_eq!(present_weight, 0.0),
                Some(mean) => {
                    let lo = members.iter().map(|(_, t)| *t).fold(f64::INFINITY, f64::min);
                    let hi = members.iter().map(|(_, t)| *t).fold(f64::NEG_INFINITY, f64::max);
                    prop_assert!(mean >= lo - 1e-9 && mean <= hi + 1e-9, "{mean} outside [{lo}, {hi}]");
                }
            }
        }
    }
}
