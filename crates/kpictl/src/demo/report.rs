//! What `kpictl demo` prints: each team's leaderboard (ListScorecards, with
//! the alerts of ListAlerts) and one agent's explained scorecard
//! (ExplainScorecard), as human tables or one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::auth::AuthChannel;
use kpi_proto::common as cpb;
use kpi_proto::scoring as pb;
use kpi_proto::scoring::scoring_service_client::ScoringServiceClient;
use serde::Serialize;

use super::generate::{MONTH, TEAMS};
use super::{DemoError, TENANT};

/// Everything printed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The month scored, e.g. `2026-10-01`.
    pub month: String,
    /// One leaderboard per team.
    pub teams: Vec<Leaderboard>,
    /// The agent explained.
    pub explained: Explained,
}

/// One team's agents, best first.
#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    /// The team id.
    pub team: String,
    /// The team's display name.
    pub name: String,
    /// The template its agents are scored by.
    pub template: String,
    /// The agents, by rank.
    pub rows: Vec<Row>,
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

/// One agent's scorecard with the reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// The agent id.
    pub agent: String,
    /// The display name.
    pub name: String,
    /// The template it was scored by.
    pub template: String,
    /// The total.
    pub total: f64,
    /// The grade.
    pub grade: String,
    /// The vetoes that fired, with their condition.
    pub vetoes: Vec<String>,
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
    /// The target.
    pub target: Option<f64>,
    /// The score, 0–100.
    pub score: Option<f64>,
    /// The weight, in %.
    pub weight: f64,
    /// Points contributed to the total.
    pub contribution: f64,
    /// Why, in words.
    pub reason: String,
}

fn month() -> Option<cpb::Period> {
    Some(cpb::Period {
        kind: cpb::PeriodKind::Month as i32,
        date: MONTH.into(),
        end_date: String::new(),
    })
}

fn parent() -> String {
    format!("tenants/{TENANT}")
}

impl Report {
    /// Reads the leaderboards, the alerts and one agent's explanation
    /// (`agent`, else the e-commerce leader).
    pub async fn read(
        mut scoring: ScoringServiceClient<AuthChannel>,
        agent: Option<&str>,
    ) -> Result<Report, DemoError> {
        let alerts = alerts(&mut scoring).await?;
        let mut teams = Vec::new();
        for team in TEAMS {
            let cards = scorecards(&mut scoring, team.id).await?;
            teams.push(Leaderboard {
                team: team.id.into(),
                name: team.name.into(),
                template: team.template.into(),
                rows: cards.iter().map(|c| row(c, &alerts)).collect(),
            });
        }
        let chosen = match agent {
            Some(agent) => agent.to_owned(),
            None => teams
                .first()
                .and_then(|t| t.rows.first())
                .map(|r| r.agent.clone())
                .ok_or_else(|| DemoError::Unreachable("scoring returned no scorecards".into()))?,
        };
        let explained = explain(&mut scoring, &chosen).await?;
        Ok(Report {
            month: MONTH.into(),
            teams,
            explained,
        })
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The report as tables.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for team in &self.teams {
            leaderboard_text(&mut out, team);
        }
        explained_text(&mut out, &self.explained);
        out
    }
}

/// Every alert of the month, by agent id.
async fn alerts(
    scoring: &mut ScoringServiceClient<AuthChannel>,
) -> Result<BTreeMap<String, Vec<String>>, DemoError> {
    let mut by_agent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = scoring
            .list_alerts(pb::ListAlertsRequest {
                parent: parent(),
                period: month(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .map_err(|s| DemoError::from_status("ListAlerts", &s))?
            .into_inner();
        for alert in page.alerts {
            let agent = alert.subject.map(|s| s.id).unwrap_or_default();
            by_agent.entry(agent).or_default().push(alert.rule);
        }
        if page.next_page_token.is_empty() {
            return Ok(by_agent);
        }
        page_token = page.next_page_token;
    }
}

/// One team's scorecards, all pages, by rank then agent id.
async fn scorecards(
    scoring: &mut ScoringServiceClient<AuthChannel>,
    team: &str,
) -> Result<Vec<pb::Scorecard>, DemoError> {
    let mut cards = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = scoring
            .list_scorecards(pb::ListScorecardsRequest {
                parent: parent(),
                team_id: team.into(),
                period: month(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .map_err(|s| DemoError::from_status(&format!("ListScorecards of team {team}"), &s))?
            .into_inner();
        cards.extend(page.scorecards);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    cards.sort_by_key(|c| (rank(c), agent_id(c)));
    Ok(cards)
}

fn rank(card: &pb::Scorecard) -> i32 {
    card.rank_in_team.as_ref().map_or(i32::MAX, |r| r.position)
}

fn agent_id(card: &pb::Scorecard) -> String {
    card.subject
        .as_ref()
        .map(|s| s.id.clone())
        .unwrap_or_default()
}

fn template(card: &pb::Scorecard) -> String {
    card.provenance
        .as_ref()
        .map(|p| p.template.clone())
        .unwrap_or_default()
}

fn row(card: &pb::Scorecard, alerts: &BTreeMap<String, Vec<String>>) -> Row {
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

async fn explain(
    scoring: &mut ScoringServiceClient<AuthChannel>,
    agent: &str,
) -> Result<Explained, DemoError> {
    let card = scoring
        .explain_scorecard(pb::ExplainScorecardRequest {
            parent: parent(),
            subject: Some(cpb::Subject {
                kind: cpb::SubjectKind::Agent as i32,
                id: agent.into(),
            }),
            period: month(),
            ..Default::default()
        })
        .await
        .map_err(|s| DemoError::from_status(&format!("ExplainScorecard of agent {agent}"), &s))?
        .into_inner()
        .scorecard
        .ok_or_else(|| DemoError::Unreachable(format!("no scorecard for agent {agent}")))?;
    Ok(Explained {
        agent: agent.into(),
        name: card.display_name.clone(),
        template: template(&card),
        total: card.total,
        grade: card.grade.clone(),
        vetoes: card
            .vetoes
            .iter()
            .map(|v| format!("{} ({})", v.rule, v.condition))
            .collect(),
        indicators: card
            .indicators
            .iter()
            .map(|i| Line {
                indicator: i.indicator.clone(),
                value: i.value,
                unit: i.unit.clone(),
                target: i.target,
                score: i.score,
                weight: i.weight,
                contribution: i.contribution,
                reason: i.reason.clone(),
            })
            .collect(),
    })
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

fn leaderboard_text(out: &mut String, team: &Leaderboard) {
    let vetoed = team.rows.iter().filter(|r| !r.vetoes.is_empty()).count();
    let alerted = team.rows.iter().filter(|r| !r.alerts.is_empty()).count();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "\n{} (team {}, template {}): {} agents, {vetoed} vetoed, {alerted} with alerts",
        team.name,
        team.team,
        team.template,
        team.rows.len()
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<15} {:<13} {:<9} {:>6}  {:<6} {:<5} ALERTS",
        "RANK", "AGENT", "NAME", "COHORT", "TOTAL", "GRADE", "VETO"
    );
    for r in &team.rows {
        let line = format!(
            "{:>4}  {:<15} {:<13} {:<9} {:>6.1}  {:<6} {:<5} {}",
            r.rank,
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

fn explained_text(out: &mut String, e: &Explained) {
    let _ = writeln!(
        out,
        "\nScorecard of {} ({}), template {}: total {:.1}, grade {}",
        e.agent, e.name, e.template, e.total, e.grade
    );
    for veto in &e.vetoes {
        let _ = writeln!(out, "  veto: {veto}");
    }
    let _ = writeln!(
        out,
        "{:<26} {:>8} {:>8} {:>6} {:>7} {:>7}  WHY",
        "INDICATOR", "VALUE", "TARGET", "SCORE", "WEIGHT", "POINTS"
    );
    for l in &e.indicators {
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
