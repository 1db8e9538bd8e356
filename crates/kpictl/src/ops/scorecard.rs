//! `kpictl scorecard get | list | explain`: scoring's GetScorecard,
//! ListScorecards (a leaderboard, with each agent's alerts) and
//! ExplainScorecard, printed with the tables shared with the demo
//! ([`crate::scorecards`]).

use std::fmt::Write as _;

use kpi_proto::common as cpb;
use kpi_proto::scoring as pb;
use serde::Serialize;

use super::cli::{ExplainArgs, GetArgs, ListArgs, ScorecardCommand};
use super::{Printed, parent, period, to_json};
use crate::cli::Cli;
use crate::client::{self, CallError, ClientConfig, Service};
use crate::scorecards::{self, Detail, Explained, Row};

/// Runs one `scorecard` sub-command.
pub async fn run(cli: &Cli, command: &ScorecardCommand) -> Result<Printed, CallError> {
    let config = ClientConfig::from_cli(cli, Service::Scoring, false);
    match command {
        ScorecardCommand::Get(args) => get(&config, args).await,
        ScorecardCommand::List(args) => list(&config, args).await,
        ScorecardCommand::Explain(args) => explain(&config, args).await,
    }
}

fn agent(id: &str) -> Option<cpb::Subject> {
    Some(cpb::Subject {
        kind: cpb::SubjectKind::Agent as i32,
        id: id.into(),
    })
}

async fn get(config: &ClientConfig, args: &GetArgs) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let period = period::parse(&args.period.period)?;
    let (subject, what) = match (&args.agent, &args.team) {
        (Some(id), _) => (agent(id), format!("agent {id}")),
        (None, Some(id)) => (
            Some(cpb::Subject {
                kind: cpb::SubjectKind::Team as i32,
                id: id.clone(),
            }),
            format!("team {id}"),
        ),
        (None, None) => return Err(CallError::usage("give --agent or --team")),
    };
    let mut scoring = client::scoring(config).await?;
    let card = scoring
        .get_scorecard(pb::GetScorecardRequest {
            parent,
            subject,
            period: Some(period),
            template: args.template.clone().unwrap_or_default(),
            template_version: 0,
        })
        .await
        .map_err(|s| config.call_error(&format!("GetScorecard of {what}"), &s))?
        .into_inner()
        .scorecard
        .ok_or_else(|| missing(config, &what))?;
    let explained = Explained::of(&card);
    let mut text = String::new();
    scorecards::explained_text(&mut text, &explained, Detail::Full);
    Ok(Printed {
        text: text.trim_start().to_owned(),
        json: to_json(&explained)?,
    })
}

/// A successful answer without its scorecard: the service is unwell.
fn missing(config: &ClientConfig, what: &str) -> CallError {
    CallError {
        message: format!(
            "{} at {} returned no scorecard of {what}",
            config.service.name(),
            config.url
        ),
        exit: crate::ExitCode::Unreachable,
        fields: Vec::new(),
    }
}

/// One page of a leaderboard.
#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    /// The team, or empty for the whole tenant.
    pub team: String,
    /// The period's label.
    pub period: String,
    /// The agents ranked in all.
    pub total_size: i32,
    /// This page's rows, best first, ranked in the team (or in the
    /// tenant, among agents under the same template, without `--team`).
    pub rows: Vec<Row>,
    /// The token of the next page; empty at the end.
    pub next_page_token: String,
}

async fn list(config: &ClientConfig, args: &ListArgs) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let period = period::parse(&args.period.period)?;
    let team = args.team.clone().unwrap_or_default();
    let mut scoring = client::scoring(config).await?;
    let page = scoring
        .list_scorecards(pb::ListScorecardsRequest {
            parent: parent.clone(),
            team_id: team.clone(),
            period: Some(period.clone()),
            template: args.template.clone().unwrap_or_default(),
            page_size: args.page_size,
            page_token: args.page_token.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| config.call_error("ListScorecards", &s))?
        .into_inner();
    let alerts = scorecards::all_alerts(
        &mut scoring,
        config,
        pb::ListAlertsRequest {
            parent,
            period: Some(period),
            team_id: team.clone(),
            ..Default::default()
        },
    )
    .await?;
    let alerts = scorecards::alerts_by_subject(&alerts);
    let tenant_wide = team.is_empty();
    let board = Leaderboard {
        team,
        period: page
            .scorecards
            .first()
            .and_then(|c| c.period.as_ref())
            .map(|p| p.label.clone())
            .unwrap_or_else(|| args.period.period.clone()),
        total_size: page.total_size,
        rows: page
            .scorecards
            .iter()
            .map(|c| ranked_row(c, &alerts, tenant_wide))
            .collect(),
        next_page_token: page.next_page_token,
    };
    Ok(Printed {
        text: leaderboard_text(&board),
        json: to_json(&board)?,
    })
}

/// A leaderboard row ranked in the team, or in the tenant when the list
/// spans every team.
fn ranked_row(
    card: &pb::Scorecard,
    alerts: &std::collections::BTreeMap<String, Vec<String>>,
    tenant_wide: bool,
) -> Row {
    let mut row = scorecards::row(card, alerts);
    if tenant_wide {
        row.rank = card
            .rank_in_tenant
            .as_ref()
            .map_or(i32::MAX, |r| r.position);
    }
    row
}

fn leaderboard_text(board: &Leaderboard) -> String {
    let mut out = String::new();
    let scope = if board.team.is_empty() {
        "all teams".to_owned()
    } else {
        format!("team {}", board.team)
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{scope}, {}: {} of {} agents",
        board.period,
        board.rows.len(),
        board.total_size
    );
    scorecards::leaderboard_table(&mut out, &board.rows);
    if !board.next_page_token.is_empty() {
        let _ = writeln!(out, "more: --page-token {}", board.next_page_token);
    }
    out
}

/// An explained scorecard with the formula and facts of each indicator.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The scorecard.
    #[serde(flatten)]
    pub scorecard: Explained,
    /// Per indicator, in scorecard order.
    pub explanations: Vec<IndicatorExplanation>,
}

/// The formula and the facts behind one indicator.
#[derive(Debug, Clone, Serialize)]
pub struct IndicatorExplanation {
    /// The indicator key.
    pub indicator: String,
    /// The formula in words.
    pub formula: String,
    /// Facts counted (at most 20).
    pub counted_fact_ids: Vec<String>,
    /// Facts in the denominator only (at most 20).
    pub excluded_fact_ids: Vec<String>,
}

async fn explain(config: &ClientConfig, args: &ExplainArgs) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let period = period::parse(&args.period.period)?;
    let what = format!("agent {}", args.agent);
    let mut scoring = client::scoring(config).await?;
    let answer = scoring
        .explain_scorecard(pb::ExplainScorecardRequest {
            parent,
            subject: agent(&args.agent),
            period: Some(period),
            template: args.template.clone().unwrap_or_default(),
            facts_per_indicator: 0,
        })
        .await
        .map_err(|s| config.call_error(&format!("ExplainScorecard of {what}"), &s))?
        .into_inner();
    let card = answer.scorecard.ok_or_else(|| missing(config, &what))?;
    let explanation = Explanation {
        scorecard: Explained::of(&card),
        explanations: answer
            .explanations
            .into_iter()
            .map(|e| IndicatorExplanation {
                indicator: e.indicator,
                formula: e.formula,
                counted_fact_ids: e.counted_fact_ids,
                excluded_fact_ids: e.excluded_fact_ids,
            })
            .collect(),
    };
    Ok(Printed {
        text: explanation_text(&explanation),
        json: to_json(&explanation)?,
    })
}

fn explanation_text(e: &Explanation) -> String {
    let mut out = String::new();
    scorecards::explained_text(&mut out, &e.scorecard, Detail::Full);
    let _ = writeln!(out, "\nFORMULAS");
    for x in &e.explanations {
        let _ = writeln!(
            out,
            "{:<26} {} ({} facts counted, {} excluded)",
            x.indicator,
            x.formula,
            x.counted_fact_ids.len(),
            x.excluded_fact_ids.len()
        );
    }
    out.trim_start().to_owned()
}
