//! Scorecards read back from scoring and printed, shared by `kpictl demo`
//! and the operator commands (`kpictl scorecard …`, `kpictl alerts list`):
//!
//! - reading every page: [`all_scorecards`], [`all_alerts`];
//! - the printable shapes: a leaderboard [`Row`], an [`Explained`]
//!   scorecard with its indicator [`Line`]s (serialised as is for
//!   `--output json`, full precision);
//! - the tables: [`leaderboard_table`], [`explained_text`] (rounded for
//!   reading).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kpi_proto::scoring as pb;
use serde::Serialize;

use crate::client::{CallError, ClientConfig, ScoringClient};

/// The most a list request asks for per page.
const PAGE: i32 = 500;

/// Every scorecard `request` selects, all pages, by rank then agent id.
pub async fn all_scorecards(
    scoring: &mut ScoringClient,
    config: &ClientConfig,
    mut request: pb::ListScorecardsRequest,
) -> Result<Vec<pb::Scorecard>, CallError> {
    request.page_size = PAGE;
    let mut cards = Vec::new();
    loop {
        let page = scoring
            .list_scorecards(request.clone())
            .await
            .map_err(|s| config.call_error("ListScorecards", &s))?
            .into_inner();
        cards.extend(page.scorecards);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    cards.sort_by_key(|c| (rank(c), agent_id(c)));
    Ok(cards)
}

/// Every alert `request` selects, all pages, in the service's order.
pub async fn all_alerts(
    scoring: &mut ScoringClient,
    config: &ClientConfig,
    mut request: pb::ListAlertsRequest,
) -> Result<Vec<pb::Alert>, CallError> {
    request.page_size = PAGE;
    let mut alerts = Vec::new();
    loop {
        let page = scoring
            .list_alerts(request.clone())
            .await
            .map_err(|s| config.call_error("ListAlerts", &s))?
            .into_inner();
        alerts.extend(page.alerts);
        if page.next_page_token.is_empty() {
            return Ok(alerts);
        }
        request.page_token = page.next_page_token;
    }
}

/// The alert rules that fired, by the id of their subject.
pub fn alerts_by_subject(alerts: &[pb::Alert]) -> BTreeMap<String, Vec<String>> {
    let mut by_subject: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in alerts {
        let subject = alert.subject.as_ref().map(|s| s.id.clone());
        by_subject
            .entry(subject.unwrap_or_default())
            .or_default()
            .push(alert.rule.clone());
    }
    by_subject
}

/// The position in the team (last when unranked).
pub fn rank(card: &pb::Scorecard) -> i32 {
    card.rank_in_team.as_ref().map_or(i32::MAX, |r| r.position)
}

/// The subject's id.
pub fn agent_id(card: &pb::Scorecard) -> String {
    card.subject
        .as_ref()
        .map(|s| s.id.clone())
        .unwrap_or_default()
}

/// The template key it was scored by.
pub fn template(card: &pb::Scorecard) -> String {
    card.provenance
        .as_ref()
        .map(|p| p.template.clone())
        .unwrap_or_default()
}

/// One agent on a leaderboard.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The rank in the team.
    pub rank: i32,
    /// The agent id.
    pub agent: String,
    /// The display name.
    pub name: String,
    /// `new_hire` or `veteran`.
    pub cohort: String,
    /// The total, 0–100.
    pub total: f64,
    /// The grade.
    pub grade: String,
    /// The veto rules that fired.
    pub vetoes: Vec<String>,
    /// The alert rules that fired.
    pub alerts: Vec<String>,
}

/// A scorecard as a leaderboard row, with the alerts of its agent.
pub fn row(card: &pb::Scorecard, alerts: &BTreeMap<String, Vec<String>>) -> Row {
    let agent = agent_id(card);
    Row {
        rank: rank(card),
        alerts: alerts.get(&agent).cloned().unwrap_or_default(),
        agent,
        name: card.display_name.clone(),
        cohort: card.cohort.clone(),
        total: card.total,
        grade: card.grade.clone(),
        vetoes: card.vetoes.iter().map(|v| v.rule.clone()).collect(),
    }
}

/// One scorecard with the reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// The agent (or team) id.
    pub agent: String,
    /// The display name.
    pub name: String,
    /// The period's label, e.g. `2026-10`.
    pub period: String,
    /// The template it was scored by.
    pub template: String,
    /// The template version.
    pub template_version: i32,
    /// The total.
    pub total: f64,
    /// The grade.
    pub grade: String,
    /// The vetoes that fired: rule (condition): description.
    pub vetoes: Vec<String>,
    /// Notes, e.g. which weights were re-normalised and why.
    pub notes: Vec<String>,
    /// Each indicator.
    pub indicators: Vec<Line>,
}

/// One indicator of an explained scorecard.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The indicator key.
    pub indicator: String,
    /// Its value, if there was data.
    pub value: Option<f64>,
    /// Its unit.
    pub unit: String,
    /// The numerator (ratios) or the aggregate.
    pub numerator: Option<f64>,
    /// The denominator (ratios).
    pub denominator: Option<f64>,
    /// The sample size.
    pub sample_size: i64,
    /// The minimum sample.
    pub min_sample: i64,
    /// Whether the sample reached the minimum.
    pub sufficient: bool,
    /// The target.
    pub target: Option<f64>,
    /// The score, 0–100.
    pub score: Option<f64>,
    /// The weight, in %.
    pub weight: f64,
    /// The weight after re-normalisation, in %.
    pub effective_weight: f64,
    /// Points contributed to the total.
    pub contribution: f64,
    /// The band reached, or met / not met.
    pub band: String,
    /// Why, in words.
    pub reason: String,
}

impl Explained {
    /// A scorecard as an explanation.
    pub fn of(card: &pb::Scorecard) -> Explained {
        Explained {
            agent: agent_id(card),
            name: card.display_name.clone(),
            period: card
                .period
                .as_ref()
                .map(|p| p.label.clone())
                .unwrap_or_default(),
            template: template(card),
            template_version: card.provenance.as_ref().map_or(0, |p| p.template_version),
            total: card.total,
            grade: card.grade.clone(),
            vetoes: card
                .vetoes
                .iter()
                .map(|v| {
                    if v.description.is_empty() {
                        format!("{} ({})", v.rule, v.condition)
                    } else {
                        format!("{} ({}): {}", v.rule, v.condition, v.description)
                    }
                })
                .collect(),
            notes: card.notes.clone(),
            indicators: card.indicators.iter().map(Line::of).collect(),
        }
    }
}

impl Line {
    fn of(i: &pb::IndicatorScore) -> Line {
        Line {
            indicator: i.indicator.clone(),
            value: i.value,
            unit: i.unit.clone(),
            numerator: i.numerator,
            denominator: i.denominator,
            sample_size: i.sample_size,
            min_sample: i.min_sample,
            sufficient: i.sufficient,
            target: i.target,
            score: i.score,
            weight: i.weight,
            effective_weight: i.effective_weight,
            contribution: i.contribution,
            band: i.band.clone(),
            reason: i.reason.clone(),
        }
    }
}

/// One decimal, or `–` for none.
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

/// At most two decimals, trailing zeros dropped (`3`, `0.75`, `4.33`), or
/// `–` for none.
pub fn short(value: Option<f64>) -> String {
    let Some(v) = value else {
        return "–".into();
    };
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// The leaderboard's header and rows.
pub fn leaderboard_table(out: &mut String, rows: &[Row]) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:>4}  {:<15} {:<13} {:<9} {:>6}  {:<6} {:<5} ALERTS",
        "RANK", "AGENT", "NAME", "COHORT", "TOTAL", "GRADE", "VETO"
    );
    for r in rows {
        let rank = if r.rank == i32::MAX {
            "–".to_owned()
        } else {
            r.rank.to_string()
        };
        let line = format!(
            "{:>4}  {:<15} {:<13} {:<9} {:>6.1}  {:<6} {:<5} {}",
            rank,
            r.agent,
            r.name,
            r.cohort,
            r.total,
            r.grade,
            if r.vetoes.is_empty() { "" } else { "VETO" },
            r.alerts.join(", ")
        );
        // No padding after the last column.
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// How much of an explanation is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Value, target, score, weight, points and why (the demo).
    Brief,
    /// Also numerator and denominator, sample and sufficiency, effective
    /// weight and band, and the scorecard's notes.
    Full,
}

/// The explanation as a heading and a table.
pub fn explained_text(out: &mut String, e: &Explained, detail: Detail) {
    let named = if e.name.is_empty() {
        e.agent.clone()
    } else {
        format!("{} ({})", e.agent, e.name)
    };
    let _ = writeln!(
        out,
        "\nScorecard of {named}, template {}: total {:.1}, grade {}",
        e.template, e.total, e.grade
    );
    for veto in &e.vetoes {
        let _ = writeln!(out, "  veto: {veto}");
    }
    match detail {
        Detail::Brief => brief_lines(out, &e.indicators),
        Detail::Full => full_lines(out, e),
    }
}

fn brief_lines(out: &mut String, lines: &[Line]) {
    let _ = writeln!(
        out,
        "{:<26} {:>8} {:>8} {:>6} {:>7} {:>7}  WHY",
        "INDICATOR", "VALUE", "TARGET", "SCORE", "WEIGHT", "POINTS"
    );
    for l in lines {
        let _ = writeln!(
            out,
            "{:<26} {:>8} {:>8} {:>6} {:>6.0}% {:>7.1}  {}",
            l.indicator,
            number(l.value),
            number(l.target),
            number(l.score),
            l.weight,
            l.contribution,
            l.reason
        );
    }
}

fn full_lines(out: &mut String, e: &Explained) {
    let _ = writeln!(
        out,
        "{:<26} {:>8} {:>8} {:>8} {:>9} {:<4} {:>8} {:>6} {:>7} {:>7} {:>7}  {:<10} WHY",
        "INDICATOR",
        "VALUE",
        "NUM",
        "DEN",
        "SAMPLE",
        "OK",
        "TARGET",
        "SCORE",
        "WEIGHT",
        "EFF.W",
        "POINTS",
        "BAND"
    );
    for l in &e.indicators {
        let line = format!(
            "{:<26} {:>8} {:>8} {:>8} {:>9} {:<4} {:>8} {:>6} {:>6.0}% {:>6.1}% {:>7.2}  {:<10} {}",
            l.indicator,
            short(l.value),
            short(l.numerator),
            short(l.denominator),
            format!("{}/{}", l.sample_size, l.min_sample),
            if l.sufficient { "yes" } else { "no" },
            short(l.target),
            number(l.score),
            l.weight,
            l.effective_weight,
            l.contribution,
            l.band,
            l.reason
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for note in &e.notes {
        let _ = writeln!(out, "  note: {note}");
    }
}
