//! Alert rules evaluated on indicator series (DOMAIN.md §5.9), and ranks in
//! a leaderboard (§5.7). Pure functions: the series come from the caller.

use std::collections::BTreeMap;

use crate::rules::Direction;
use crate::template::{AlertCondition, AlertOp};

/// The series an alert condition reads: indicator key → values, oldest
/// first, the last being the period asked for. `None` where the indicator
/// had no value in a period.
pub type Series = BTreeMap<String, Vec<Option<f64>>>;

/// How many periods of history (the one asked for included) a condition
/// needs to be evaluated.
pub fn periods_needed(condition: &AlertCondition) -> usize {
    match condition {
        // "worsened N periods in a row" compares N + 1 values.
        AlertCondition::ConsecutiveDecline { periods, .. } => *periods as usize + 1,
        AlertCondition::Threshold { .. } => 1,
        AlertCondition::Divergence { .. } => 2,
    }
}

/// A fired alert: the values that fired it, oldest first, per indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// indicator key → the values read, oldest first.
    pub values: BTreeMap<String, Vec<f64>>,
    /// The reason in words.
    pub reason: String,
}

/// The last `n` values of `key`, if all of them are present.
fn tail(series: &Series, key: &str, n: usize) -> Option<Vec<f64>> {
    let values = series.get(key)?;
    if values.len() < n {
        return None;
    }
    values[values.len() - n..].iter().copied().collect()
}

/// Evaluates `condition` on `series`; `direction` gives, per indicator, which
/// way is better (a decline is a change for the worse).
pub fn evaluate(
    condition: &AlertCondition,
    series: &Series,
    direction: &dyn Fn(&str) -> Direction,
) -> Option<Fired> {
    match condition {
        AlertCondition::ConsecutiveDecline { indicator, periods } => {
            let values = tail(series, indicator, *periods as usize + 1)?;
            let dir = direction(indicator);
            let worsened = values
                .windows(2)
                .all(|w| w[1] != w[0] && dir.at_least_as_good(w[0], w[1]));
            worsened.then(|| Fired {
                reason: format!(
                    "{indicator} worsened {periods} periods in a row: {}",
                    join(&values)
                ),
                values: BTreeMap::from([(indicator.clone(), values)]),
            })
        }
        AlertCondition::Threshold {
            indicator,
            op,
            value,
        } => {
            let values = tail(series, indicator, 1)?;
            let actual = values[0];
            let fired = match op {
                AlertOp::Gt => actual > *value,
                AlertOp::Ge => actual >= *value,
                AlertOp::Lt => actual < *value,
                AlertOp::Le => actual <= *value,
            };
            fired.then(|| Fired {
                reason: format!("{indicator} is {actual}, {} {value}", op_words(*op)),
                values: BTreeMap::from([(indicator.clone(), values)]),
            })
        }
        AlertCondition::Divergence { rising, falling } => {
            let up = tail(series, rising, 2)?;
            let down = tail(series, falling, 2)?;
            (up[1] > up[0] && down[1] < down[0]).then(|| Fired {
                reason: format!(
                    "{rising} rose ({}) while {falling} fell ({})",
                    join(&up),
                    join(&down)
                ),
                values: BTreeMap::from([(rising.clone(), up), (falling.clone(), down)]),
            })
        }
    }
}

fn op_words(op: AlertOp) -> &'static str {
    match op {
        AlertOp::Gt => "above",
        AlertOp::Ge => "at or above",
        AlertOp::Lt => "below",
        AlertOp::Le => "at or below",
    }
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Competition ranks (1, 2, 2, 4) of `totals`, best (highest) first; the
/// result is in the order of `totals`.
pub fn competition_ranks(totals: &[f64]) -> Vec<u32> {
    totals
        .iter()
        .map(|t| 1 + totals.iter().filter(|o| *o > t).count() as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &[f64])]) -> Series {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|x| Some(*x)).collect()))
            .collect()
    }

    #[test]
    fn three_declines_need_four_values_and_follow_the_direction() {
        let rule = AlertCondition::ConsecutiveDecline {
            indicator: "csat".into(),
            periods: 3,
        };
        let higher = |_: &str| Direction::HigherIsBetter;
        let lower = |_: &str| Direction::LowerIsBetter;
        let s = series(&[("csat", &[4.8, 4.6, 4.5, 4.1])]);
        let fired = evaluate(&rule, &s, &higher).unwrap();
        assert_eq!(fired.values["csat"], vec![4.8, 4.6, 4.5, 4.1]);
        assert!(evaluate(&rule, &s, &lower).is_none());
        // A flat step breaks the run; too short a history fires nothing.
        assert!(evaluate(&rule, &series(&[("csat", &[4.8, 4.6, 4.6, 4.1])]), &higher).is_none());
        assert!(evaluate(&rule, &series(&[("csat", &[4.6, 4.5, 4.1])]), &higher).is_none());
    }

    #[test]
    fn thresholds_and_divergence() {
        let gt = AlertCondition::Threshold {
            indicator: "frt".into(),
            op: AlertOp::Gt,
            value: 30.0,
        };
        let any = |_: &str| Direction::HigherIsBetter;
        assert!(evaluate(&gt, &series(&[("frt", &[10.0, 31.0])]), &any).is_some());
        assert!(evaluate(&gt, &series(&[("frt", &[40.0, 30.0])]), &any).is_none());
        let div = AlertCondition::Divergence {
            rising: "vol".into(),
            falling: "fcr".into(),
        };
        let s = series(&[("vol", &[40.0, 55.0]), ("fcr", &[80.0, 70.0])]);
        let fired = evaluate(&div, &s, &any).unwrap();
        assert_eq!(fired.values["fcr"], vec![80.0, 70.0]);
        let s = series(&[("vol", &[40.0, 55.0]), ("fcr", &[80.0, 80.0])]);
        assert!(evaluate(&div, &s, &any).is_none());
    }

    #[test]
    fn ties_share_a_rank() {
        assert_eq!(
            competition_ranks(&[70.0, 90.0, 70.0, 50.0]),
            vec![2, 1, 2, 4]
        );
        assert!(competition_ranks(&[]).is_empty());
    }
}
