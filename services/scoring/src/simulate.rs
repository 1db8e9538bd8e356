//! What-if (试算): a past period scored with a template version (typically
//! a draft) and compared, agent by agent, with the version that was active.

use std::collections::BTreeMap;

use kpi_domain::scorecard::{self, Scored};
use kpi_proto::ingestion as ing;
use kpi_proto::scoring as pb;
use tonic::Status;

use crate::clients::Resolved;
use crate::engine::{Engine, Scope, definitions};

/// The result of a simulation: the active version compared against, the
/// rows (largest change first) and the mean change.
pub struct Simulation {
    /// The active version; 0 if none.
    pub active_version: u32,
    /// One row per agent.
    pub rows: Vec<pb::SimulationRow>,
    /// The mean change of totals over the agents scored under both.
    pub mean_change: f64,
}

impl Engine {
    /// Scores the scope's period with `template` version `version` and with
    /// the version active at the period start, for every agent (of `team`)
    /// the simulated version applies to.
    pub async fn simulate(
        &self,
        scope: &Scope,
        template: &str,
        version: u32,
        team: &str,
    ) -> Result<Simulation, Status> {
        let date = scope.period.start;
        let simulated = self
            .clients
            .resolve(&scope.tenant, template, version, ("", "", ""), date)
            .await?;
        let active = match self
            .clients
            .resolve(&scope.tenant, template, 0, ("", "", ""), date)
            .await
        {
            Ok(r) => Some(r),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => None,
            Err(s) => return Err(s),
        };
        let agents: Vec<ing::Agent> = self
            .clients
            .agents(&scope.tenant, scope.roster_at(), team, &[])
            .await?
            .into_iter()
            .filter(|a| {
                simulated
                    .def
                    .applicability
                    .matches(&a.role, &a.team_id, &a.cohort)
            })
            .collect();
        let ids: Vec<String> = agents.iter().map(|a| a.agent_id.clone()).collect();
        let simulated_scores = self.score_all(scope, &simulated, &agents, &ids).await?;
        let active_scores = match &active {
            Some(a) => Some(self.score_all(scope, a, &agents, &ids).await?),
            None => None,
        };
        let mut rows: Vec<pb::SimulationRow> = agents
            .iter()
            .filter_map(|a| {
                let sim = simulated_scores.get(&a.agent_id)?;
                let act = active_scores.as_ref().and_then(|m| m.get(&a.agent_id));
                Some(row(&a.agent_id, sim, act))
            })
            .collect();
        let changes: Vec<f64> = rows.iter().filter_map(|r| r.change).collect();
        let mean_change = if changes.is_empty() {
            0.0
        } else {
            changes.iter().sum::<f64>() / changes.len() as f64
        };
        rows.sort_by(|a, b| {
            let size = |r: &pb::SimulationRow| r.change.map_or(-1.0, f64::abs);
            size(b)
                .total_cmp(&size(a))
                .then_with(|| a.agent_id.cmp(&b.agent_id))
        });
        Ok(Simulation {
            active_version: active.map_or(0, |a| a.version),
            rows,
            mean_change,
        })
    }

    async fn score_all(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        agents: &[ing::Agent],
        ids: &[String],
    ) -> Result<BTreeMap<String, Scored>, Status> {
        let (values, _) = self
            .values(scope, ing::GroupBy::Agent, ids, &resolved.indicators)
            .await?;
        let defs = definitions(resolved);
        Ok(agents
            .iter()
            .filter_map(|a| {
                let v = values.get(&a.agent_id)?;
                Some((
                    a.agent_id.clone(),
                    scorecard::score(&resolved.def, &defs, v, &a.cohort),
                ))
            })
            .collect())
    }
}

fn row(agent: &str, simulated: &Scored, active: Option<&Scored>) -> pb::SimulationRow {
    let score_of = |s: &Scored, k: &str| s.items.iter().find(|i| i.indicator == k)?.score;
    let score_changes = simulated
        .items
        .iter()
        .filter_map(|i| {
            let now = i.score?;
            let before = score_of(active?, &i.indicator)?;
            Some((i.indicator.clone(), now - before))
        })
        .collect();
    pb::SimulationRow {
        agent_id: agent.to_string(),
        active_total: active.map(|a| a.total),
        active_grade: active.map(|a| a.grade.clone()).unwrap_or_default(),
        simulated_total: simulated.total,
        simulated_grade: simulated.grade.clone(),
        change: active.map(|a| simulated.total - a.total),
        score_changes,
    }
}
