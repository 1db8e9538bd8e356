//! What `kpictl demo` prints: each team's leaderboard (ListScorecards, with
//! the alerts of ListAlerts) and one agent's explained scorecard
//! (ExplainScorecard), as human tables or one JSON object. The reading of
//! pages and the tables are shared with the operator commands
//! ([`crate::scorecards`]).

use std::fmt::Write as _;

use kpi_proto::common as cpb;
use kpi_proto::scoring as pb;
use serde::Serialize;

use crate::client::{ClientConfig, ScoringClient};
use crate::scorecards::{self, Detail};
pub use crate::scorecards::{Explained, Line, Row};

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
        mut scoring: ScoringClient,
        config: &ClientConfig,
        agent: Option<&str>,
    ) -> Result<Report, DemoError> {
        let all_alerts = scorecards::all_alerts(
            &mut scoring,
            config,
            pb::ListAlertsRequest {
                parent: parent(),
                period: month(),
                ..Default::default()
            },
        )
        .await?;
        let alerts = scorecards::alerts_by_subject(&all_alerts);
        let mut teams = Vec::new();
        for team in TEAMS {
            let request = pb::ListScorecardsRequest {
                parent: parent(),
                team_id: team.id.into(),
                period: month(),
                ..Default::default()
            };
            let cards = scorecards::all_scorecards(&mut scoring, config, request)
                .await
                .map_err(|e| e.context(&format!("team {}", team.id)))?;
            teams.push(Leaderboard {
                team: team.id.into(),
                name: team.name.into(),
                template: team.template.into(),
                rows: cards.iter().map(|c| scorecards::row(c, &alerts)).collect(),
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
        let explained = explain(&mut scoring, config, &chosen).await?;
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
        scorecards::explained_text(&mut out, &self.explained, Detail::Brief);
        out
    }
}

async fn explain(
    scoring: &mut ScoringClient,
    config: &ClientConfig,
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
        .map_err(|s| config.call_error(&format!("ExplainScorecard of agent {agent}"), &s))?
        .into_inner()
        .scorecard
        .ok_or_else(|| DemoError::Unreachable(format!("no scorecard for agent {agent}")))?;
    Ok(Explained::of(&card))
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
    scorecards::leaderboard_table(out, &team.rows);
}
