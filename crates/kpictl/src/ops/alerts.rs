//! `kpictl alerts list`: the alerts that fired in a period (scoring's
//! ListAlerts, every page), per tenant, team or agent.

use std::fmt::Write as _;

use kpi_proto::scoring as pb;
use serde::Serialize;

use super::cli::{AlertsArgs, AlertsCommand};
use super::{Printed, parent, period, to_json};
use crate::cli::Cli;
use crate::client::{self, CallError, ClientConfig, Service};
use crate::scorecards;

/// Runs one `alerts` sub-command.
pub async fn run(cli: &Cli, command: &AlertsCommand) -> Result<Printed, CallError> {
    let config = ClientConfig::from_cli(cli, Service::Scoring, false);
    match command {
        AlertsCommand::List(args) => list(&config, args).await,
    }
}

/// One alert that fired.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    /// The subject's id (an agent or a team).
    pub subject: String,
    /// The template the rule belongs to.
    pub template: String,
    /// The rule key.
    pub rule: String,
    /// The severity.
    pub severity: String,
    /// The period it fired in.
    pub period: String,
    /// The reason, in words.
    pub reason: String,
    /// The values that fired it, oldest first, per indicator.
    pub series: std::collections::BTreeMap<String, Vec<f64>>,
}

impl AlertRow {
    fn of(alert: pb::Alert) -> AlertRow {
        AlertRow {
            subject: alert.subject.map(|s| s.id).unwrap_or_default(),
            template: alert.template,
            rule: alert.rule,
            severity: alert.severity,
            period: alert.period.map(|p| p.label).unwrap_or_default(),
            reason: alert.reason,
            series: alert
                .series
                .into_iter()
                .map(|(k, v)| (k, v.values))
                .collect(),
        }
    }
}

/// What `alerts list` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Alerts {
    /// The alerts.
    pub alerts: Vec<AlertRow>,
}

async fn list(config: &ClientConfig, args: &AlertsArgs) -> Result<Printed, CallError> {
    let request = pb::ListAlertsRequest {
        parent: parent(&args.tenant.tenant)?,
        period: Some(period::parse(&args.period.period)?),
        team_id: args.team.clone().unwrap_or_default(),
        agent_id: args.agent.clone().unwrap_or_default(),
        ..Default::default()
    };
    let mut scoring = client::scoring(config).await?;
    let alerts = scorecards::all_alerts(&mut scoring, config, request).await?;
    let alerts = Alerts {
        alerts: alerts.into_iter().map(AlertRow::of).collect(),
    };
    Ok(Printed {
        text: text(&alerts.alerts),
        json: to_json(&alerts)?,
    })
}

fn text(alerts: &[AlertRow]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let noun = if alerts.len() == 1 { "alert" } else { "alerts" };
    let _ = writeln!(out, "{} {noun}", alerts.len());
    if alerts.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:<15} {:<14} {:<22} {:<8} {:<9} REASON",
        "SUBJECT", "TEMPLATE", "RULE", "SEVERITY", "PERIOD"
    );
    for a in alerts {
        let _ = writeln!(
            out,
            "{:<15} {:<14} {:<22} {:<8} {:<9} {}",
            a.subject, a.template, a.rule, a.severity, a.period, a.reason
        );
    }
    out
}
