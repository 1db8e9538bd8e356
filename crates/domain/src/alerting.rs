//! Alert rules evaluated on indicator series (DOMAIN.md §5.9), and ranks in
//! a leaderboard (§5.7, vetoed scorecards last). Pure functions: the series come from the caller.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::rules::Direction;
use crate::scorecard::readable;
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
                reason: {
                    let mut w = words(&[actual, *value]).into_iter();
                    let (actual, value) =
                        (w.next().unwrap_or_default(), w.next().unwrap_or_default());
                    format!("{indicator} is {actual}, {} {value}", op_words(*op))
                },
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

/// Numbers in words, rounded unless rounding would make two neighbours
/// that differ read alike ("3.5, below 3.5" or "4.2 → 4.2" would contradict
/// the rule that fired); then all exact.
fn words(values: &[f64]) -> Vec<String> {
    let rounded: Vec<String> = values.iter().map(|v| readable(*v)).collect();
    let hides_a_difference =
        (1..values.len()).any(|i| values[i] != values[i - 1] && rounded[i] == rounded[i - 1]);
    if hides_a_difference {
        values.iter().map(f64::to_string).collect()
    } else {
        rounded
    }
}

fn join(values: &[f64]) -> String {
    words(values).join(" → ")
}

/// Where a scorecard stands in a leaderboard. A veto forces the lowest grade
/// (§5.5), so a vetoed scorecard ranks below every scorecard without one,
/// whatever its total; otherwise the higher total ranks first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// Whether a veto rule fired.
    pub vetoed: bool,
    /// The weighted total.
    pub total: f64,
}

impl Standing {
    /// Best first: `Less` when `self` ranks above `other`, `Equal` on a tie.
    pub fn cmp_best_first(&self, other: &Self) -> Ordering {
        self.vetoed
            .cmp(&other.vetoed)
            .then_with(|| other.total.total_cmp(&self.total))
    }
}

/// Competition ranks (1, 2, 2, 4) of `standings`, best first; the result is
/// in the order of `standings`.
pub fn competition_ranks(standings: &[Standing]) -> Vec<u32> {
    standings
        .iter()
        .map(|s| {
            let above = standings.iter().filter(|o| o.cmp_best_first(s).is_lt());
            1 + above.count() as u32
        })
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
    fn alert_reasons_round_unless_rounding_hides_what_fired() {
        fn fired(rule: &AlertCondition, values: &[f64]) -> String {
            let any = |_: &str| Direction::HigherIsBetter;
            let reason = evaluate(rule, &series(&[("csat", values)]), &any).map(|f| f.reason);
            reason.unwrap_or_default()
        }
        let below = |value| AlertCondition::Threshold {
            indicator: "csat".into(),
            op: AlertOp::Lt,
            value,
        };
        assert_eq!(
            fired(&below(3.5), &[3.466666666]),
            "csat is 3.47, below 3.5"
        );
        assert_eq!(
            fired(&below(3.5), &[3.4999]),
            "csat is 3.4999, below 3.5",
            "3.50 would contradict the rule"
        );
        let decline = AlertCondition::ConsecutiveDecline {
            indicator: "csat".into(),
            periods: 2,
        };
        assert_eq!(
            fired(&decline, &[4.8333333, 4.6, 4.1]),
            "csat worsened 2 periods in a row: 4.83 → 4.6 → 4.1"
        );
        assert_eq!(
            fired(&decline, &[4.8, 4.2001, 4.2]),
            "csat worsened 2 periods in a row: 4.8 → 4.2001 → 4.2"
        );
    }

    #[test]
    fn ties_share_a_rank() {
        let open = |total| Standing {
            vetoed: false,
            total,
        };
        assert_eq!(
            competition_ranks(&[open(70.0), open(90.0), open(70.0), open(50.0)]),
            vec![2, 1, 2, 4]
        );
        assert!(competition_ranks(&[]).is_empty());
    }

    #[test]
    fn a_vetoed_scorecard_ranks_below_every_one_without_a_veto() {
        let card = |vetoed, total| Standing { vetoed, total };
        // The vetoed 96.1 would be second by total alone.
        let standings = [
            card(false, 96.6),
            card(true, 96.1),
            card(false, 40.0),
            card(true, 12.0),
            card(true, 96.1),
        ];
        assert_eq!(competition_ranks(&standings), vec![1, 3, 2, 5, 3]);
    }
}
