//! The gRPC handlers: validate the request, compute or read from the cache
//! through the [`Engine`], answer.

use kpi_proto::common as cpb;
use kpi_proto::pre_encoded::EncodedBoard;
use kpi_proto::scoring as pb;
use kpi_proto::scoring::scoring_service_server::ScoringService;
use tonic::{Request, Response, Status};

use crate::engine::{self, Engine, Scope};
use crate::request::{Checks, SubjectRef, page_range, paginate};
use crate::values::{self, Side};

/// The scoring service.
#[derive(Clone)]
pub struct ScoringApi {
    engine: Engine,
}

impl ScoringApi {
    /// The service over an engine.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

/// A validated scorecard request.
struct ScorecardArgs {
    tenant: String,
    subject: SubjectRef,
    period: kpi_domain::period::Period,
}

/// The status for a request whose checks passed but whose parts are missing
/// (cannot happen: every missing part is a recorded violation).
fn incomplete() -> Status {
    Status::invalid_argument("invalid request")
}

fn scorecard_args(
    c: &mut Checks,
    parent: &str,
    subject: Option<&cpb::Subject>,
    period: Option<&cpb::Period>,
) -> Option<ScorecardArgs> {
    let tenant = c.tenant(parent);
    let subject = c.subject(subject);
    let period = c.period(period);
    Some(ScorecardArgs {
        tenant: tenant?,
        subject: subject?,
        period: period?,
    })
}

impl ScoringApi {
    async fn scorecard(
        &self,
        args: &ScorecardArgs,
        template: &str,
        version: u32,
    ) -> Result<(pb::Scorecard, Scope, crate::clients::Resolved), Status> {
        let scope = self.engine.scope(&args.tenant, args.period.clone()).await?;
        let (card, resolved) = self
            .scorecard_in(&scope, &args.subject, template, version)
            .await?;
        Ok((card, scope, resolved))
    }

    async fn scorecard_in(
        &self,
        scope: &Scope,
        subject: &SubjectRef,
        template: &str,
        version: u32,
    ) -> Result<(pb::Scorecard, crate::clients::Resolved), Status> {
        match subject {
            SubjectRef::Agent(id) => {
                self.engine
                    .agent_scorecard(scope, id, template, version)
                    .await
            }
            SubjectRef::Team(id) => {
                self.engine
                    .team_scorecard(scope, id, template, version)
                    .await
            }
        }
    }
}

/// The cache-key parts of a subject.
fn subject_part(subject: &SubjectRef) -> String {
    match subject {
        SubjectRef::Agent(id) => format!("agent:{id}"),
        SubjectRef::Team(id) => format!("team:{id}"),
    }
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::GetScorecardResponse>, Status> {
        let req = request.into_inner();
        let mut c = Checks::default();
        let args = scorecard_args(
            &mut c,
            &req.parent,
            req.subject.as_ref(),
            req.period.as_ref(),
        );
        c.template("template", &req.template, false);
        let version = c.version("template_version", req.template_version, false);
        if version > 0 && req.template.is_empty() {
            c.push("template_version", "a version needs a template key");
        }
        c.finish()?;
        let args = args.ok_or_else(incomplete)?;
        let parts = [
            subject_part(&args.subject),
            req.template.clone(),
            version.to_string(),
        ];
        let (subject, template) = (&args.subject, req.template.as_str());
        // Sent as cached: a hit is neither decoded nor encoded again. Only
        // this process's encoder wrote these bytes (or a replica's, through
        // Redis, under the same versioned key prefix).
        let scorecard = self
            .engine
            .answer(
                &args.tenant,
                args.period.clone(),
                ("answer:scorecard", &parts),
                |scope| async move {
                    let (card, _) = self
                        .scorecard_in(&scope, subject, template, version)
                        .await?;
                    Ok(card)
                },
            )
            .await?;
        Ok(Response::new(pb::GetScorecardResponse::pre_encoded(
            scorecard,
        )))
    }

    async fn list_scorecards(
        &self,
        request: Request<pb::ListScorecardsRequest>,
    ) -> Result<Response<pb::ListScorecardsResponse>, Status> {
        let req = request.into_inner();
        let mut c = Checks::default();
        let tenant = c.tenant(&req.parent);
        c.optional_id("team_id", &req.team_id);
        let period = c.period(req.period.as_ref());
        c.template("template", &req.template, false);
        let page = c.page(req.page_size, &req.page_token);
        c.finish()?;
        let (Some(tenant), Some(period), Some((size, offset))) = (tenant, period, page) else {
            return Err(incomplete());
        };
        let parts = [req.team_id.clone(), req.template.clone()];
        let (team, template) = (req.team_id.as_str(), req.template.as_str());
        // The page is cut from the cached board's bytes and sent as it is:
        // a page request decodes no scorecard.
        let board = self
            .engine
            .answer(
                &tenant,
                period,
                ("answer:leaderboard", &parts),
                |scope| async move {
                    let scorecards = self.engine.leaderboard(&scope, team, template).await?;
                    Ok(pb::ListScorecardsResponse {
                        scorecards,
                        ..Default::default()
                    })
                },
            )
            .await?;
        let board = EncodedBoard::parse(board).map_err(engine::undecodable)?;
        let (page, next_page_token) = page_range(board.len(), size, offset);
        let total_size = i32::try_from(board.len()).unwrap_or(i32::MAX);
        Ok(Response::new(pb::ListScorecardsResponse::pre_encoded(
            board.entries(page),
            next_page_token,
            total_size,
        )))
    }

    async fn explain_scorecard(
        &self,
        request: Request<pb::ExplainScorecardRequest>,
    ) -> Result<Response<pb::ExplainScorecardResponse>, Status> {
        let req = request.into_inner();
        let mut c = Checks::default();
        let args = scorecard_args(
            &mut c,
            &req.parent,
            req.subject.as_ref(),
            req.period.as_ref(),
        );
        c.template("template", &req.template, false);
        let limit = c.facts_per_indicator(req.facts_per_indicator);
        c.finish()?;
        let args = args.ok_or_else(incomplete)?;
        let subject = match &args.subject {
            SubjectRef::Agent(id) => (cpb::SubjectKind::Agent, id.clone()),
            SubjectRef::Team(id) => (cpb::SubjectKind::Team, id.clone()),
        };
        let (scorecard, scope, resolved) = self.scorecard(&args, &req.template, 0).await?;
        let mut explanations = Vec::with_capacity(scorecard.indicators.len());
        for line in &scorecard.indicators {
            let Some((_, def)) = resolved.indicators.get(&line.indicator) else {
                continue;
            };
            let who = (subject.0, subject.1.as_str());
            let counted = self
                .engine
                .fact_ids(&scope, def, Side::Counted, who, limit)
                .await?;
            let excluded = self
                .engine
                .fact_ids(&scope, def, Side::Base, who, limit)
                .await?;
            explanations.push(pb::IndicatorExplanation {
                indicator: line.indicator.clone(),
                formula: formula_in_words(def),
                counted_fact_ids: counted,
                excluded_fact_ids: excluded,
            });
        }
        Ok(Response::new(pb::ExplainScorecardResponse {
            scorecard: Some(scorecard),
            explanations,
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let req = request.into_inner();
        let mut c = Checks::default();
        let tenant = c.tenant(&req.parent);
        let period = c.period(req.period.as_ref());
        c.optional_id("team_id", &req.team_id);
        c.optional_id("agent_id", &req.agent_id);
        let page = c.page(req.page_size, &req.page_token);
        c.finish()?;
        let (Some(tenant), Some(period), Some((size, offset))) = (tenant, period, page) else {
            return Err(incomplete());
        };
        let scope = self.engine.scope(&tenant, period).await?;
        let alerts = self
            .engine
            .alerts(
                &scope,
                crate::alerts::AlertScope {
                    team: &req.team_id,
                    agent: &req.agent_id,
                },
            )
            .await?;
        let (alerts, next_page_token) = paginate(alerts, size, offset);
        Ok(Response::new(pb::ListAlertsResponse {
            alerts,
            next_page_token,
        }))
    }

    async fn simulate_template(
        &self,
        request: Request<pb::SimulateTemplateRequest>,
    ) -> Result<Response<pb::SimulateTemplateResponse>, Status> {
        let req = request.into_inner();
        let mut c = Checks::default();
        let tenant = c.tenant(&req.parent);
        c.template("template", &req.template, true);
        let version = c.version("version", req.version, true);
        let period = c.period(req.period.as_ref());
        c.optional_id("team_id", &req.team_id);
        let page = c.page(req.page_size, &req.page_token);
        c.finish()?;
        let (Some(tenant), Some(period), Some((size, offset))) = (tenant, period, page) else {
            return Err(incomplete());
        };
        let scope = self.engine.scope(&tenant, period).await?;
        let simulation = self
            .engine
            .simulate(&scope, &req.template, version, &req.team_id)
            .await?;
        let (rows, next_page_token) = paginate(simulation.rows, size, offset);
        Ok(Response::new(pb::SimulateTemplateResponse {
            active_version: i32::try_from(simulation.active_version).unwrap_or(i32::MAX),
            rows,
            next_page_token,
            mean_change: simulation.mean_change,
        }))
    }
}

/// The formula of an indicator in words: its description and its measures.
fn formula_in_words(def: &kpi_domain::indicator::IndicatorDef) -> String {
    let measure = |m: &kpi_domain::measure::Measure| {
        let what = if m.field.is_empty() {
            format!("{:?}", m.aggregation).to_lowercase()
        } else {
            format!("{:?} of {}", m.aggregation, m.field).to_lowercase()
        };
        let filter = if m.filter.is_empty() {
            String::new()
        } else {
            format!(" where {}", m.filter)
        };
        format!("{what} of {} facts{filter}", m.fact_type.as_str())
    };
    let parts: Vec<String> = values::measures_of(def)
        .into_iter()
        .map(|(side, m)| match side {
            Side::Counted => measure(m),
            Side::Base => format!("÷ {}", measure(m)),
        })
        .collect();
    let body = if parts.is_empty() {
        def.formula.clone()
    } else {
        parts.join(" ")
    };
    let scale = if def.scale == 1.0 {
        String::new()
    } else {
        format!(" × {}", def.scale)
    };
    let per_day = if def.per_working_day {
        " ÷ working days"
    } else {
        ""
    };
    format!("{} ({body}{per_day}{scale})", def.description)
}
