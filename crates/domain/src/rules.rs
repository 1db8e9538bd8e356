//! Scoring rules: how an indicator's value becomes 0–100 points (DOMAIN §5.3),
//! and the checks that keep a rule meaningful for its indicator's direction.

use serde::{Deserialize, Serialize};

use crate::error::FieldViolation;

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher values are better.
    HigherIsBetter,
    /// Lower values are better.
    LowerIsBetter,
}

impl Direction {
    /// Whether `a` is at least as good as `b`.
    pub fn at_least_as_good(self, a: f64, b: f64) -> bool {
        match self {
            Direction::HigherIsBetter => a >= b,
            Direction::LowerIsBetter => a <= b,
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher_is_better",
            Direction::LowerIsBetter => "lower_is_better",
        }
    }
}

/// How a value becomes points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScoringRule {
    /// `clamp((actual − worst) / (best − worst), 0, 1) × 100`.
    Linear {
        /// The value scoring 0.
        worst: f64,
        /// The value scoring 100.
        best: f64,
    },
    /// Ordered thresholds each earning points; the best band reached wins.
    Bands {
        /// Bands from lowest to highest.
        bands: Vec<Band>,
        /// Points when no band is reached.
        #[serde(default)]
        below_points: f64,
        /// Label when no band is reached.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        below_label: String,
    },
    /// 100 at or beyond the target, else 0.
    TargetMet,
    /// 100 at or better than `threshold`, linearly down to 0 at `zero_at`.
    Cap {
        /// Full points at or better than this.
        threshold: f64,
        /// Zero points at or worse than this.
        zero_at: f64,
    },
}

/// One band of a banded rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// A short label, e.g. "Met".
    pub label: String,
    /// The threshold to reach, in the indicator's direction.
    pub threshold: f64,
    /// Points earned, 0–100.
    pub points: f64,
}

/// Points for one value, and the band or verdict reached.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutcome {
    /// 0–100.
    pub score: f64,
    /// The band label, "met" / "not met", or empty for linear rules.
    pub band: String,
}

impl ScoringRule {
    /// Scores `actual` for an indicator with `direction`; `target` is used by
    /// the target-met rule. `None` when the rule needs a target and has none.
    pub fn score(
        &self,
        actual: f64,
        direction: Direction,
        target: Option<f64>,
    ) -> Option<RuleOutcome> {
        let outcome = match self {
            ScoringRule::Linear { worst, best } => RuleOutcome {
                score: linear(actual, *worst, *best),
                band: String::new(),
            },
            ScoringRule::Cap { threshold, zero_at } => {
                let met = direction.at_least_as_good(actual, *threshold);
                RuleOutcome {
                    score: linear(actual, *zero_at, *threshold),
                    band: if met { "within cap" } else { "over cap" }.to_string(),
                }
            }
            ScoringRule::TargetMet => {
                let met = direction.at_least_as_good(actual, target?);
                RuleOutcome {
                    score: if met { 100.0 } else { 0.0 },
                    band: if met { "met" } else { "not met" }.to_string(),
                }
            }
            ScoringRule::Bands {
                bands,
                below_points,
                below_label,
            } => bands
                .iter()
                .rev()
                .find(|band| direction.at_least_as_good(actual, band.threshold))
                .map(|band| RuleOutcome {
                    score: band.points,
                    band: band.label.clone(),
                })
                .unwrap_or_else(|| RuleOutcome {
                    score: *below_points,
                    band: below_label.clone(),
                }),
        };
        Some(outcome)
    }

    /// Problems with the rule for an indicator with `direction`; `has_target`
    /// says whether a target is available to a target-met rule.
    pub fn check(&self, direction: Direction, has_target: bool) -> Vec<FieldViolation> {
        let mut out = Vec::new();
        match self {
            ScoringRule::Linear { worst, best } => {
                check_finite(&mut out, "linear.worst", *worst);
                check_finite(&mut out, "linear.best", *best);
                if worst == best {
                    out.push(FieldViolation::new(
                        "linear.best",
                        "best must differ from worst",
                    ));
                } else if !direction.at_least_as_good(*best, *worst) {
                    out.push(FieldViolation::new(
                        "linear.best",
                        format!(
                            "best must be better than worst for a {} indicator",
                            direction.as_str()
                        ),
                    ));
                }
            }
            ScoringRule::Cap { threshold, zero_at } => {
                check_finite(&mut out, "cap.threshold", *threshold);
                check_finite(&mut out, "cap.zero_at", *zero_at);
                if threshold == zero_at || !direction.at_least_as_good(*threshold, *zero_at) {
                    out.push(FieldViolation::new(
                        "cap.zero_at",
                        format!(
                            "zero_at must be worse than threshold for a {} indicator",
                            direction.as_str()
                        ),
                    ));
                }
            }
            ScoringRule::TargetMet => {
                if !has_target {
                    out.push(FieldViolation::new(
                        "target_met",
                        "a target-met rule needs a target (on the item or the indicator)",
                    ));
                }
            }
            ScoringRule::Bands {
                bands,
                below_points,
                ..
            } => {
                check_points(&mut out, "bands.below_points", *below_points);
                if bands.is_empty() {
                    out.push(FieldViolation::new(
                        "bands.bands",
                        "at least one band is needed",
                    ));
                }
                for (i, band) in bands.iter().enumerate() {
                    check_finite(
                        &mut out,
                        &format!("bands.bands[{i}].threshold"),
                        band.threshold,
                    );
                    check_points(&mut out, &format!("bands.bands[{i}].points"), band.points);
                    if band.label.trim().is_empty() {
                        out.push(FieldViolation::new(
                            format!("bands.bands[{i}].label"),
                            "a band needs a label",
                        ));
                    }
                    if let Some(prev) = i.checked_sub(1).map(|p| &bands[p]) {
                        if band.threshold == prev.threshold
                            || !direction.at_least_as_good(band.threshold, prev.threshold)
                        {
                            out.push(FieldViolation::new(
                                format!("bands.bands[{i}].threshold"),
                                "bands must go from lowest to highest, each threshold better than the one before",
                            ));
                        }
                        if band.points < prev.points {
                            out.push(FieldViolation::new(
                                format!("bands.bands[{i}].points"),
                                "a higher band cannot earn fewer points",
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}

/// `clamp((actual − worst) / (best − worst), 0, 1) × 100`; works for both
/// directions because worst > best for lower-is-better indicators.
pub fn linear(actual: f64, worst: f64, best: f64) -> f64 {
    if best == worst {
        return if actual == best { 100.0 } else { 0.0 };
    }
    ((actual - worst) / (best - worst)).clamp(0.0, 1.0) * 100.0
}

fn check_finite(out: &mut Vec<FieldViolation>, field: &str, value: f64) {
    if !value.is_finite() {
        out.push(FieldViolation::new(field, "must be a finite number"));
    }
}

fn check_points(out: &mut Vec<FieldViolation>, field: &str, value: f64) {
    if !(0.0..=100.0).contains(&value) {
        out.push(FieldViolation::new(
            field,
            "points must be between 0 and 100",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn linear_scores_match_hand_computed_values() {
        // csat_avg: worst 3.0, best 5.0; 4.5 is 75 % of the way.
        assert_eq!(linear(4.5, 3.0, 5.0), 75.0);
        // first_response_time minutes: worst 30, best 5; 10 min → (10−30)/(5−30) = 0.8.
        assert!((linear(10.0, 30.0, 5.0) - 80.0).abs() < 1e-12);
        assert_eq!(linear(2.0, 3.0, 5.0), 0.0);
        assert_eq!(linear(6.0, 3.0, 5.0), 100.0);
    }

    #[test]
    fn bands_pick_the_best_band_reached() {
        let rule = ScoringRule::Bands {
            bands: vec![
                Band {
                    label: "基础".into(),
                    threshold: 70.0,
                    points: 60.0,
                },
                Band {
                    label: "进阶".into(),
                    threshold: 80.0,
                    points: 80.0,
                },
                Band {
                    label: "卓越".into(),
                    threshold: 90.0,
                    points: 100.0,
                },
            ],
            below_points: 0.0,
            below_label: "Far below".into(),
        };
        let at = |v| {
            rule.score(v, Direction::HigherIsBetter, None)
                .map(|o| (o.score, o.band))
        };
        assert_eq!(at(85.0), Some((80.0, "进阶".into())));
        assert_eq!(at(90.0), Some((100.0, "卓越".into())));
        assert_eq!(at(50.0), Some((0.0, "Far below".into())));
        assert!(rule.check(Direction::HigherIsBetter, false).is_empty());
        // The same thresholds are out of order for a lower-is-better indicator.
        assert!(!rule.check(Direction::LowerIsBetter, false).is_empty());
    }

    #[test]
    fn target_met_and_cap_follow_the_direction() {
        let rule = ScoringRule::TargetMet;
        assert_eq!(
            rule.score(14.0, Direction::LowerIsBetter, Some(15.0))
                .map(|o| o.score),
            Some(100.0)
        );
        assert_eq!(
            rule.score(16.0, Direction::LowerIsBetter, Some(15.0))
                .map(|o| o.score),
            Some(0.0)
        );
        assert_eq!(rule.score(1.0, Direction::LowerIsBetter, None), None);
        let cap = ScoringRule::Cap {
            threshold: 300.0,
            zero_at: 600.0,
        };
        assert_eq!(
            cap.score(120.0, Direction::LowerIsBetter, None)
                .map(|o| o.score),
            Some(100.0)
        );
        assert_eq!(
            cap.score(450.0, Direction::LowerIsBetter, None)
                .map(|o| o.score),
            Some(50.0)
        );
        assert!(cap.check(Direction::LowerIsBetter, false).is_empty());
        assert!(!cap.check(Direction::HigherIsBetter, false).is_empty());
    }

    proptest! {
        #[test]
        fn linear_is_monotonic_in_the_actual_value(
            worst in -1000.0f64..1000.0, span in 0.001f64..1000.0,
            a in -3000.0f64..3000.0, b in -3000.0f64..3000.0,
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            // Higher is better: best above worst.
            prop_assert!(linear(lo, worst, worst + span) <= linear(hi, worst, worst + span));
            // Lower is better: best below worst; a lower value never scores less.
            prop_assert!(linear(lo, worst, worst - span) >= linear(hi, worst, worst - span));
        }
    }
}
