//! Alerts: each template's alert rules evaluated on its agents' indicator
//! series (this period and as many before it as the rules need), and on the
//! team's own series when a team is asked for.

use std::collections::BTreeMap;

use kpi_domain::alerting::{self, Series};
use kpi_domain::rules::Direction;
use kpi_proto::common as cpb;
use kpi_proto::ingestion as ing;
use kpi_proto::scoring as pb;
use tonic::Status;

use crate::clients::Resolved;
use crate::convert;
use crate::engine::{Engine, Scope};
use crate::values::Values;

/// Who alerts are listed for.
pub struct AlertScope<'a> {
    /// Only this team's agents (and the team).
    pub team: &'a str,
    /// Only this agent.
    pub agent: &'a str,
}

impl Engine {
    /// The alerts fired in the scope's period, most severe first.
    pub async fn alerts(
        &self,
        scope: &Scope,
        who: AlertScope<'_>,
    ) -> Result<Vec<pb::Alert>, Status> {
        if !who.team.is_empty() && !self.clients.team_exists(&scope.tenant, who.team).await? {
            return Err(kpi_runtime::status::not_found(format!(
                "team {} of tenant {}",
                who.team, scope.tenant
            )));
        }
        let agents = if who.agent.is_empty() {
            self.clients
                .agents(&scope.tenant, scope.roster_at(), who.team, &[])
                .await?
        } else {
            vec![self.agent(scope, who.agent).await?]
        };
        let assigned = self.assign(scope, &agents).await?;
        let mut groups: BTreeMap<(String, u32), (Resolved, Vec<String>)> = BTreeMap::new();
        for a in &agents {
            let key = (a.role.clone(), a.team_id.clone(), a.cohort.clone());
            if let Some(Some(r)) = assigned.get(&key) {
                groups
                    .entry((r.key.clone(), r.version))
                    .or_insert_with(|| (r.clone(), Vec::new()))
                    .1
                    .push(a.agent_id.clone());
            }
        }
        let mut out = Vec::new();
        for (resolved, ids) in groups.values() {
            let fired = self
                .fired(scope, resolved, ing::GroupBy::Agent, ids)
                .await?;
            out.extend(
                fired
                    .into_iter()
                    .map(|(id, a)| alert_proto(scope, resolved, cpb::SubjectKind::Agent, &id, a)),
            );
        }
        if !who.team.is_empty() && who.agent.is_empty() {
            let resolved = self
                .clients
                .resolve(&scope.tenant, "", 0, ("", who.team, ""), scope.period.start)
                .await;
            match resolved {
                Ok(resolved) => {
                    let ids = [who.team.to_string()];
                    let fired = self
                        .fired(scope, &resolved, ing::GroupBy::Team, &ids)
                        .await?;
                    out.extend(fired.into_iter().map(|(id, a)| {
                        alert_proto(scope, &resolved, cpb::SubjectKind::Team, &id, a)
                    }));
                }
                Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
                Err(s) => return Err(s),
            }
        }
        out.sort_by(|a, b| {
            severity_rank(&b.severity)
                .cmp(&severity_rank(&a.severity))
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| subject_key(a).cmp(&subject_key(b)))
        });
        Ok(out)
    }

    /// (subject, fired rule) for each subject and each rule of the template.
    async fn fired(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        group_by: ing::GroupBy,
        ids: &[String],
    ) -> Result<Vec<(String, Fired)>, Status> {
        let rules = &resolved.def.alerts;
        let Some(depth) = rules
            .iter()
            .map(|r| alerting::periods_needed(&r.condition))
            .max()
        else {
            return Ok(Vec::new());
        };
        // Oldest first: the period `depth - 1` before this one, …, this one.
        let mut scopes = vec![scope.clone()];
        while scopes.len() < depth {
            let earlier = scopes[scopes.len() - 1].previous();
            scopes.push(earlier);
        }
        scopes.reverse();
        let history: Vec<BTreeMap<String, Values>> = futures::future::try_join_all(
            scopes
                .iter()
                .map(|s| self.values(s, group_by, ids, &resolved.indicators)),
        )
        .await?
        .into_iter()
        .map(|(v, _)| v)
        .collect();
        let direction = |k: &str| {
            resolved
                .indicators
                .get(k)
                .map_or(Direction::HigherIsBetter, |(_, d)| d.direction)
        };
        let mut out = Vec::new();
        for id in ids {
            let series: Series = resolved
                .indicators
                .keys()
                .map(|k| {
                    let values = history
                        .iter()
                        .map(|period| period.get(id).and_then(|v| v.get(k)).and_then(|v| v.value))
                        .collect();
                    (k.clone(), values)
                })
                .collect();
            for rule in rules {
                if let Some(f) = alerting::evaluate(&rule.condition, &series, &direction) {
                    out.push((
                        id.clone(),
                        Fired {
                            rule: rule.key.clone(),
                            description: rule.description.clone(),
                            severity: rule.severity.clone(),
                            fired: f,
                        },
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A rule that fired, with its values.
struct Fired {
    rule: String,
    description: String,
    severity: String,
    fired: alerting::Fired,
}

fn alert_proto(
    scope: &Scope,
    resolved: &Resolved,
    kind: cpb::SubjectKind,
    id: &str,
    f: Fired,
) -> pb::Alert {
    pb::Alert {
        template: resolved.key.clone(),
        rule: f.rule,
        description: f.description,
        severity: f.severity,
        subject: Some(convert::subject(kind, id)),
        period: Some(convert::resolved_period(&scope.period, scope.tz)),
        series: f
            .fired
            .values
            .into_iter()
            .map(|(k, values)| (k, pb::AlertSeries { values }))
            .collect(),
        reason: f.fired.reason,
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

fn subject_key(a: &pb::Alert) -> (i32, String) {
    a.subject
        .as_ref()
        .map_or((0, String::new()), |s| (s.kind, s.id.clone()))
}
