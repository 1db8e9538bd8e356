//! Scorecards computed from source and cached.
//!
//! The unit of computation is a *board*: every agent scored under one
//! template version for one period (a leaderboard), because an agent's
//! scorecard carries its rank in the team and the tenant. A board is computed
//! with one QueryMeasures round per period (this one and the previous, for
//! the trend) for all its agents at once, and cached under a key carrying the
//! tenant, the period and time zone, the template version and the tenant's
//! data version. Each agent's scorecard is cached on its own under a key with
//! the same parts plus the agent, so a cached read costs one small value.
//!
//! In front of those, a whole answer (a GetScorecard's scorecard, a
//! ListScorecards' leaderboard) is cached under the request and the tenant's
//! catalog revision and data version ([`Engine::answer`]), read fresh for
//! every request but shared between concurrent ones ([`FreshVersions`]).
//! A cached answer costs that shared read and one cache lookup; a catalog
//! activation or an ingest acknowledged before the request changes a
//! version, so it is never answered from an old entry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use kpi_cache::{Cache, CacheKey, VersionBoard};
use kpi_domain::alerting::{Standing, competition_ranks};
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::indicator::IndicatorDef;
use kpi_domain::period::Period;
use kpi_domain::scorecard::{self, Scored};
use kpi_domain::template::RollupMode;
use kpi_proto::common as cpb;
use kpi_proto::convert::filter_to;
use kpi_proto::ingestion as ing;
use kpi_proto::scoring as pb;
use prost::Message;
use prost::bytes::Bytes;
use tonic::Status;

use crate::clients::{Clients, DataStamp, Resolved};
use crate::convert;
use crate::values::{self, Side, Values, ValuesQuery};
use crate::versions::FreshVersions;

/// Most fact ids named per fired veto.
const VETO_FACTS_MAX: usize = 50;

/// A tenant and period, resolved against the tenant's calendar, with the
/// data version read at the start of the request.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The tenant.
    pub tenant: String,
    /// The period in local dates.
    pub period: Period,
    /// The tenant's time zone.
    pub tz: Tz,
    /// The tenant's default business calendar.
    pub calendar: BusinessCalendar,
    /// The data version and watermark when the request started.
    pub stamp: DataStamp,
}

impl Scope {
    /// The period's instants.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        self.period.bounds(self.tz)
    }

    /// The previous period of the same length.
    pub fn previous(&self) -> Scope {
        Scope {
            period: self.period.previous(),
            ..self.clone()
        }
    }

    /// The roster is read as of the period's last instant (or now, for a
    /// running period), so agents who joined during the period are scored.
    pub fn roster_at(&self) -> DateTime<Utc> {
        let (start, end) = self.window();
        (end - TimeDelta::seconds(1)).min(Utc::now()).max(start)
    }

    /// Working days of the period in the tenant's calendar.
    pub fn working_days(&self) -> u32 {
        self.calendar
            .working_days(self.period.start, self.period.end)
    }

    /// Cache-key parts naming the period: kind and bounds, time zone.
    fn key_parts(&self) -> [String; 2] {
        [period_part(&self.period), self.tz.name().to_string()]
    }
}

/// The cache-key part naming a period in local dates: kind and bounds.
fn period_part(period: &Period) -> String {
    format!("{:?}:{}..{}", period.kind, period.start, period.end)
}

/// Whether a board is for the template that applies to each agent, or for a
/// template the caller named (then every agent is scored under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The template that applies to each agent.
    Applicable,
    /// A template named in the request.
    Named,
}

/// The scoring engine: clients of the other services and the cache.
#[derive(Clone)]
pub struct Engine {
    /// The other services.
    pub clients: Clients,
    /// Computed scorecards.
    pub cache: Cache,
    /// The tenants' versions, read fresh per request, shared between requests.
    versions: FreshVersions,
}

fn cache_key(scope: &Scope, kind: &'static str, head: &str, rest: &[String]) -> CacheKey {
    let mut parts = vec![head.to_string()];
    parts.extend(scope.key_parts());
    parts.extend(rest.iter().cloned());
    parts.push(format!("d{}", scope.stamp.version));
    CacheKey::new(scope.tenant.clone(), kind, parts)
}

/// The key of an agent's scorecard on a board.
fn agent_key(scope: &Scope, agent_id: &str, selection: Selection, resolved: &Resolved) -> CacheKey {
    cache_key(
        scope,
        "scorecard",
        &format!("agent:{agent_id}"),
        &[format!("{selection:?}"), template_part(resolved)],
    )
}

/// The template version and its content: a draft changes under one version.
fn template_part(resolved: &Resolved) -> String {
    format!(
        "{}@{}#{}",
        resolved.key, resolved.version, resolved.fingerprint
    )
}

/// A cached value shared with the cache, as the owner of a [`Bytes`].
struct CachedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for CachedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, Status> {
    M::decode(bytes).map_err(undecodable)
}

/// The answer to a cached value that does not decode (logged: it means a
/// writer of another shape under the same key prefix).
pub fn undecodable(error: impl std::fmt::Display) -> Status {
    tracing::warn!(error = %error, "a cached value did not decode");
    Status::internal("a cached value did not decode")
}

/// A scope from the tenant's calendar and a data version.
fn scope_of(
    tenant: &str,
    period: Period,
    calendar: BusinessCalendar,
    stamp: DataStamp,
) -> Result<Scope, Status> {
    let tz = calendar.tz().map_err(|v| {
        tracing::error!(tenant, violations = ?v, "the tenant's calendar has a bad time zone");
        Status::internal("the tenant's calendar has a bad time zone")
    })?;
    Ok(Scope {
        tenant: tenant.to_string(),
        period,
        tz,
        calendar,
        stamp,
    })
}

/// The role, team and cohort an agent's template is resolved with.
type Combo = (String, String, String);

fn combo(agent: &ing::Agent) -> Combo {
    (
        agent.role.clone(),
        agent.team_id.clone(),
        agent.cohort.clone(),
    )
}

impl Engine {
    /// The engine over the other services and a cache, learning the
    /// tenants' versions from `board` when there is one.
    pub fn new(clients: Clients, cache: Cache, board: Option<Arc<VersionBoard>>) -> Self {
        let versions = FreshVersions::new(clients.clone(), board);
        Self {
            clients,
            cache,
            versions,
        }
    }

    /// An answer cached under `kind`, the request's `parts` and period, and
    /// the tenant's versions read fresh; computed by `compute` in a scope at
    /// that data version when absent. A hit costs nothing but the shared
    /// read of the versions and one lookup. The time zone is not in the key:
    /// it is the calendar's, which the catalog revision covers.
    ///
    /// The answer is returned encoded, as cached: the handler sends it on
    /// as it is (decoding and encoding it again per request was nearly a
    /// fifth of scoring's CPU under load).
    pub async fn answer<M, F, Fut>(
        &self,
        tenant: &str,
        period: Period,
        (kind, parts): (&'static str, &[String]),
        compute: F,
    ) -> Result<Bytes, Status>
    where
        M: Message,
        F: FnOnce(Scope) -> Fut,
        Fut: Future<Output = Result<M, Status>>,
    {
        let versions = self.versions.get(tenant).await?;
        let mut key_parts = parts.to_vec();
        key_parts.extend([
            period_part(&period),
            format!("c{}", versions.catalog),
            format!("d{}", versions.data.version),
        ]);
        let key = CacheKey::new(tenant.to_string(), kind, key_parts);
        let bytes = self
            .cache
            .get_or_compute(&key, || async {
                let calendar = self.clients.calendar(tenant).await?;
                let scope = scope_of(tenant, period, calendar, versions.data)?;
                Ok::<_, Status>(compute(scope).await?.encode_to_vec())
            })
            .await?;
        Ok(Bytes::from_owner(CachedBytes(bytes)))
    }

    /// The scope of a request: the tenant's calendar (time zone, working
    /// days) and fresh data version, read concurrently.
    pub async fn scope(&self, tenant: &str, period: Period) -> Result<Scope, Status> {
        let (calendar, versions) =
            tokio::try_join!(self.clients.calendar(tenant), self.versions.get(tenant))?;
        scope_of(tenant, period, calendar, versions.data)
    }

    /// One agent, as of the scope's roster instant; NOT_FOUND if unknown.
    pub async fn agent(&self, scope: &Scope, agent_id: &str) -> Result<ing::Agent, Status> {
        self.clients
            .agents(
                &scope.tenant,
                scope.roster_at(),
                "",
                &[agent_id.to_string()],
            )
            .await?
            .into_iter()
            .find(|a| a.agent_id == agent_id)
            .ok_or_else(|| {
                kpi_runtime::status::not_found(format!(
                    "agent {agent_id} of tenant {} in {}",
                    scope.tenant,
                    scope.period.label()
                ))
            })
    }

    /// The template version for an agent.
    pub async fn resolve_for_agent(
        &self,
        scope: &Scope,
        agent: &ing::Agent,
        template: &str,
        version: u32,
    ) -> Result<Resolved, Status> {
        self.clients
            .resolve(
                &scope.tenant,
                template,
                version,
                (&agent.role, &agent.team_id, &agent.cohort),
                scope.period.start,
            )
            .await
    }

    /// An agent's scorecard, from the cache or computed with its board.
    pub async fn agent_scorecard(
        &self,
        scope: &Scope,
        agent_id: &str,
        template: &str,
        version: u32,
    ) -> Result<(pb::Scorecard, Resolved), Status> {
        let agent = self.agent(scope, agent_id).await?;
        let resolved = self
            .resolve_for_agent(scope, &agent, template, version)
            .await?;
        let selection = if template.is_empty() {
            Selection::Applicable
        } else {
            Selection::Named
        };
        let key = agent_key(scope, agent_id, selection, &resolved);
        let bytes = self
            .cache
            .get_or_compute(&key, || async {
                let board = self.board(scope, &resolved, selection, None).await?;
                board
                    .scorecards
                    .iter()
                    .find(|s| s.subject.as_ref().is_some_and(|s| s.id == agent_id))
                    .map(Message::encode_to_vec)
                    .ok_or_else(|| Status::aborted("the roster changed while scoring; try again"))
            })
            .await?;
        Ok((decode(&bytes)?, resolved))
    }

    /// The board of one template version: every agent scored under it,
    /// ranked. `members` may be given when the caller already has them.
    pub async fn board(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        selection: Selection,
        members: Option<Vec<ing::Agent>>,
    ) -> Result<pb::ListScorecardsResponse, Status> {
        let key = cache_key(
            scope,
            "board",
            &format!("{selection:?}"),
            &[template_part(resolved)],
        );
        let bytes = self
            .cache
            .get_or_compute(&key, || async {
                let members = match members {
                    Some(m) => m,
                    None => self.members(scope, resolved, selection).await?,
                };
                let board = self.compute_board(scope, resolved, members).await?;
                self.keep_each_card(scope, resolved, selection, &board)
                    .await;
                Ok::<_, Status>(board.encode_to_vec())
            })
            .await?;
        decode(&bytes)
    }

    /// Caches every card of a freshly computed board under its agent's key,
    /// so each agent's first read after a computation is a hit rather than a
    /// decode of the whole board.
    async fn keep_each_card(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        selection: Selection,
        board: &pb::ListScorecardsResponse,
    ) {
        let cards = board
            .scorecards
            .iter()
            .filter_map(|card| {
                let agent = card.subject.as_ref()?;
                let key = agent_key(scope, &agent.id, selection, resolved);
                Some((key, card.encode_to_vec()))
            })
            .collect();
        self.cache.put_many(cards).await;
    }

    /// The agents of a board: everyone on the roster for a named template,
    /// else those the template version applies to.
    async fn members(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        selection: Selection,
    ) -> Result<Vec<ing::Agent>, Status> {
        let roster = self
            .clients
            .agents(&scope.tenant, scope.roster_at(), "", &[])
            .await?;
        if selection == Selection::Named {
            return Ok(roster);
        }
        let assigned = self.assign(scope, &roster).await?;
        Ok(roster
            .into_iter()
            .filter(|a| {
                assigned
                    .get(&combo(a))
                    .and_then(|r| r.as_ref())
                    .is_some_and(|r| r.key == resolved.key && r.version == resolved.version)
            })
            .collect())
    }

    /// The applicable template of every distinct (role, team, cohort) of a
    /// roster; `None` where no template applies.
    pub async fn assign(
        &self,
        scope: &Scope,
        roster: &[ing::Agent],
    ) -> Result<HashMap<Combo, Option<Resolved>>, Status> {
        let combos: BTreeSet<Combo> = roster.iter().map(combo).collect();
        let lookups = combos.into_iter().map(|c| async move {
            let resolved = self
                .clients
                .resolve(&scope.tenant, "", 0, (&c.0, &c.1, &c.2), scope.period.start)
                .await;
            match resolved {
                Ok(r) => Ok((c, Some(r))),
                // No template applies to these agents: they are not scored.
                Err(s) if s.code() == tonic::Code::FailedPrecondition => Ok((c, None)),
                Err(s) => Err(s),
            }
        });
        Ok(futures::future::try_join_all(lookups)
            .await?
            .into_iter()
            .collect())
    }

    /// Values for subjects in a scope.
    pub async fn values(
        &self,
        scope: &Scope,
        group_by: ing::GroupBy,
        subjects: &[String],
        indicators: &BTreeMap<String, (u32, IndicatorDef)>,
    ) -> Result<(BTreeMap<String, Values>, DataStamp), Status> {
        values::compute(
            &self.clients,
            &ValuesQuery {
                tenant: &scope.tenant,
                window: scope.window(),
                working_days: scope.working_days(),
                group_by,
                subjects,
                indicators,
            },
        )
        .await
    }

    /// Scores every member for the period and the previous one, ranks them,
    /// and returns their scorecards best first.
    async fn compute_board(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        members: Vec<ing::Agent>,
    ) -> Result<pb::ListScorecardsResponse, Status> {
        let ids: Vec<String> = members.iter().map(|a| a.agent_id.clone()).collect();
        tracing::debug!(
            template = %resolved.key,
            version = resolved.version,
            agents = ids.len(),
            "computing a board (cache miss)"
        );
        let previous = scope.previous();
        let ((now, stamp), (before, _)) = tokio::try_join!(
            self.values(scope, ing::GroupBy::Agent, &ids, &resolved.indicators),
            self.values(&previous, ing::GroupBy::Agent, &ids, &resolved.indicators)
        )?;
        let defs = definitions(resolved);
        let stamp = newest(scope.stamp, stamp);
        let mut cards = Vec::with_capacity(members.len());
        for agent in &members {
            let empty = Values::new();
            let v = now.get(&agent.agent_id).unwrap_or(&empty);
            let p = before.get(&agent.agent_id).unwrap_or(&empty);
            let scored = scorecard::score(&resolved.def, &defs, v, &agent.cohort);
            let previous_scored = scorecard::score(&resolved.def, &defs, p, &agent.cohort);
            let vetoes = self
                .veto_results(
                    scope,
                    resolved,
                    &scored,
                    cpb::SubjectKind::Agent,
                    &agent.agent_id,
                )
                .await?;
            let mut card = scorecard_proto(
                scope,
                resolved,
                stamp,
                &scored,
                (&previous_scored, p),
                vetoes,
            );
            card.subject = Some(convert::subject(cpb::SubjectKind::Agent, &agent.agent_id));
            card.display_name = agent.display_name.clone();
            card.team_id = agent.team_id.clone();
            card.role = agent.role.clone();
            card.cohort = agent.cohort.clone();
            cards.push(card);
        }
        rank(&mut cards);
        let total_size = i32::try_from(cards.len()).unwrap_or(i32::MAX);
        Ok(pb::ListScorecardsResponse {
            scorecards: cards,
            total_size,
            ..Default::default()
        })
    }

    /// A team's scorecard: from the team's facts (ratio-correct), or with
    /// the total as the cohort-weighted mean of its members' totals.
    pub async fn team_scorecard(
        &self,
        scope: &Scope,
        team_id: &str,
        template: &str,
        version: u32,
    ) -> Result<(pb::Scorecard, Resolved), Status> {
        let Some(team) = self.clients.team(&scope.tenant, team_id).await? else {
            return Err(kpi_runtime::status::not_found(format!(
                "team {team_id} of tenant {}",
                scope.tenant
            )));
        };
        let resolved = self
            .clients
            .resolve(
                &scope.tenant,
                template,
                version,
                ("", team_id, ""),
                scope.period.start,
            )
            .await?;
        let key = cache_key(
            scope,
            "scorecard",
            &format!("team:{team_id}"),
            &[template_part(&resolved)],
        );
        let bytes = self
            .cache
            .get_or_compute(&key, || async {
                Ok::<_, Status>(
                    self.compute_team(scope, &resolved, &team)
                        .await?
                        .encode_to_vec(),
                )
            })
            .await?;
        Ok((decode(&bytes)?, resolved))
    }

    async fn compute_team(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        team: &ing::Team,
    ) -> Result<pb::Scorecard, Status> {
        let team_id = team.team_id.as_str();
        let ids = [team_id.to_string()];
        let previous = scope.previous();
        let ((now, stamp), (before, _)) = tokio::try_join!(
            self.values(scope, ing::GroupBy::Team, &ids, &resolved.indicators),
            self.values(&previous, ing::GroupBy::Team, &ids, &resolved.indicators)
        )?;
        let defs = definitions(resolved);
        let empty = Values::new();
        let v = now.get(team_id).unwrap_or(&empty);
        let p = before.get(team_id).unwrap_or(&empty);
        let mut scored = scorecard::score(&resolved.def, &defs, v, "");
        let mut previous_scored = scorecard::score(&resolved.def, &defs, p, "");
        if resolved.def.team_rollup.mode == RollupMode::CohortWeightedMean {
            self.cohort_rollup(scope, resolved, team_id, &mut scored)
                .await?;
            self.cohort_rollup(&previous, resolved, team_id, &mut previous_scored)
                .await?;
        }
        let vetoes = self
            .veto_results(scope, resolved, &scored, cpb::SubjectKind::Team, team_id)
            .await?;
        let mut card = scorecard_proto(
            scope,
            resolved,
            newest(scope.stamp, stamp),
            &scored,
            (&previous_scored, p),
            vetoes,
        );
        card.subject = Some(convert::subject(cpb::SubjectKind::Team, team_id));
        card.display_name = team.display_name.clone();
        card.team_id = team_id.to_string();
        Ok(card)
    }

    /// Replaces a team's total by the cohort-weighted mean of its members'
    /// totals (members scored under the team's template), and its grade by
    /// that total's, unless a veto decided the grade.
    async fn cohort_rollup(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        team_id: &str,
        scored: &mut Scored,
    ) -> Result<(), Status> {
        let members = self
            .clients
            .agents(&scope.tenant, scope.roster_at(), team_id, &[])
            .await?;
        let ids: Vec<String> = members.iter().map(|a| a.agent_id.clone()).collect();
        let (values, _) = self
            .values(scope, ing::GroupBy::Agent, &ids, &resolved.indicators)
            .await?;
        let defs = definitions(resolved);
        let empty = Values::new();
        let totals: Vec<(String, f64)> = members
            .iter()
            .map(|a| {
                let v = values.get(&a.agent_id).unwrap_or(&empty);
                let s = scorecard::score(&resolved.def, &defs, v, &a.cohort);
                (a.cohort.clone(), s.total)
            })
            .collect();
        let weights = &resolved.def.team_rollup.cohort_weights;
        match scorecard::cohort_weighted_mean(&totals, weights) {
            Some(total) => {
                let zeroed = scored.vetoes.iter().any(|v| v.zero_total);
                if !zeroed {
                    scored.total = total;
                }
                if scored.vetoes.is_empty() {
                    scored.grade = scorecard::grade_of(&resolved.def.effective_grades(), total);
                }
                scored.notes.push(format!(
                    "team total is the cohort-weighted mean of {} members' totals (weights {}); indicator lines are the team's own facts",
                    totals.len(),
                    weights
                        .iter()
                        .map(|(c, w)| format!("{c} {w}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            None => scored.notes.push(
                "no member in a weighted cohort: the total is computed from the team's facts"
                    .to_string(),
            ),
        }
        Ok(())
    }

    /// The fired vetoes with the facts that fired them.
    async fn veto_results(
        &self,
        scope: &Scope,
        resolved: &Resolved,
        scored: &Scored,
        kind: cpb::SubjectKind,
        id: &str,
    ) -> Result<Vec<pb::VetoResult>, Status> {
        let mut out = Vec::with_capacity(scored.vetoes.len());
        for fired in &scored.vetoes {
            let mut fact_ids = Vec::new();
            for indicator in fired.values.keys() {
                if fact_ids.len() >= VETO_FACTS_MAX {
                    break;
                }
                let Some((_, def)) = resolved.indicators.get(indicator) else {
                    continue;
                };
                let ids = self
                    .fact_ids(
                        scope,
                        def,
                        Side::Counted,
                        (kind, id),
                        VETO_FACTS_MAX - fact_ids.len(),
                    )
                    .await?;
                fact_ids.extend(ids);
            }
            let description = resolved
                .def
                .vetoes
                .iter()
                .find(|v| v.key == fired.rule)
                .map(|v| v.description.as_str())
                .unwrap_or_default();
            out.push(convert::veto(fired, description, fact_ids));
        }
        Ok(out)
    }

    /// Ids of facts counted by one side of an indicator for a subject; for
    /// a ratio's base, those in the denominator but not the numerator.
    pub async fn fact_ids(
        &self,
        scope: &Scope,
        def: &IndicatorDef,
        side: Side,
        (kind, id): (cpb::SubjectKind, &str),
        limit: usize,
    ) -> Result<Vec<String>, Status> {
        let measures = values::measures_of(def);
        let Some((_, measure)) = measures.iter().find(|(s, _)| *s == side) else {
            return Ok(Vec::new());
        };
        let filter = match (side, measures.iter().find(|(s, _)| *s == Side::Counted)) {
            (Side::Base, Some((_, counted))) => excluded_filter(&measure.filter, &counted.filter),
            _ => measure.filter.clone(),
        };
        let (start, end) = scope.window();
        let response = self
            .clients
            .list_facts(ing::ListFactsRequest {
                parent: format!("tenants/{}", scope.tenant),
                fact_type: kpi_proto::convert::fact_type_to(measure.fact_type) as i32,
                start_time: Some(kpi_proto::convert::timestamp(start)),
                end_time: Some(kpi_proto::convert::timestamp(end)),
                time_field: measure.time_field.clone(),
                subject: Some(convert::subject(kind, id)),
                attribution: kpi_proto::convert::attribution_to(def.attribution) as i32,
                filter: filter_to(&filter),
                page_size: i32::try_from(limit).unwrap_or(1_000),
                page_token: String::new(),
            })
            .await?;
        let id_field = measure.fact_type.schema().id_field;
        Ok(response
            .facts
            .iter()
            .filter_map(|f| match f.fields.get(id_field)?.kind.as_ref()? {
                prost_types::value::Kind::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .collect())
    }

    /// The leaderboard of a period: every agent (of `team` and its
    /// sub-teams, if given) under its applicable template or the named
    /// one, best first; ranks are per template version.
    pub async fn leaderboard(
        &self,
        scope: &Scope,
        team: &str,
        template: &str,
    ) -> Result<Vec<pb::Scorecard>, Status> {
        if !team.is_empty() && !self.clients.team_exists(&scope.tenant, team).await? {
            return Err(kpi_runtime::status::not_found(format!(
                "team {team} of tenant {}",
                scope.tenant
            )));
        }
        let roster = self
            .clients
            .agents(&scope.tenant, scope.roster_at(), "", &[])
            .await?;
        let boards = if template.is_empty() {
            self.applicable_boards(scope, roster).await?
        } else {
            let resolved = self
                .clients
                .resolve(&scope.tenant, template, 0, ("", "", ""), scope.period.start)
                .await?;
            vec![
                self.board(scope, &resolved, Selection::Named, Some(roster))
                    .await?,
            ]
        };
        let in_team: Option<BTreeSet<String>> = if team.is_empty() {
            None
        } else {
            Some(
                self.clients
                    .agents(&scope.tenant, scope.roster_at(), team, &[])
                    .await?
                    .into_iter()
                    .map(|a| a.agent_id)
                    .collect(),
            )
        };
        let mut cards: Vec<pb::Scorecard> = boards
            .into_iter()
            .flat_map(|b| b.scorecards)
            .filter(|c| {
                in_team
                    .as_ref()
                    .is_none_or(|t| c.subject.as_ref().is_some_and(|s| t.contains(&s.id)))
            })
            .collect();
        cards.sort_by(best_first);
        Ok(cards)
    }

    /// One board per template version that applies to some agent.
    async fn applicable_boards(
        &self,
        scope: &Scope,
        roster: Vec<ing::Agent>,
    ) -> Result<Vec<pb::ListScorecardsResponse>, Status> {
        let assigned = self.assign(scope, &roster).await?;
        let mut groups: BTreeMap<(String, u32), (Resolved, Vec<ing::Agent>)> = BTreeMap::new();
        for agent in roster {
            if let Some(Some(r)) = assigned.get(&combo(&agent)) {
                groups
                    .entry((r.key.clone(), r.version))
                    .or_insert_with(|| (r.clone(), Vec::new()))
                    .1
                    .push(agent);
            }
        }
        let mut boards = Vec::with_capacity(groups.len());
        for (resolved, members) in groups.into_values() {
            boards.push(
                self.board(scope, &resolved, Selection::Applicable, Some(members))
                    .await?,
            );
        }
        Ok(boards)
    }
}

fn subject_id(card: &pb::Scorecard) -> &str {
    card.subject.as_ref().map_or("", |s| s.id.as_str())
}

/// "In the base but not counted": `base && !(counted)`.
fn excluded_filter(base: &str, counted: &str) -> String {
    match (base.is_empty(), counted.is_empty()) {
        (_, true) => "false".to_string(),
        (true, false) => format!("!({counted})"),
        (false, false) => format!("({base}) && !({counted})"),
    }
}

/// key → definition of a resolved template's indicators.
pub fn definitions(resolved: &Resolved) -> BTreeMap<String, IndicatorDef> {
    resolved
        .indicators
        .iter()
        .map(|(k, (_, d))| (k.clone(), d.clone()))
        .collect()
}

/// The later of two data stamps.
fn newest(a: DataStamp, b: DataStamp) -> DataStamp {
    DataStamp {
        version: a.version.max(b.version),
        watermark: a.watermark.max(b.watermark),
    }
}

/// Whether a scored period had anything to score (else it has no total to
/// compare with).
fn has_total(scored: &Scored) -> bool {
    scored.items.iter().any(|i| i.sufficient)
}

/// The scorecard proto of a scored subject (subject fields are set by the caller).
fn scorecard_proto(
    scope: &Scope,
    resolved: &Resolved,
    stamp: DataStamp,
    scored: &Scored,
    (previous, previous_values): (&Scored, &Values),
    vetoes: Vec<pb::VetoResult>,
) -> pb::Scorecard {
    let previous_total = has_total(previous).then_some(previous.total);
    pb::Scorecard {
        tenant: scope.tenant.clone(),
        period: Some(convert::resolved_period(&scope.period, scope.tz)),
        indicators: convert::lines(scored, resolved, Some(previous_values)),
        total: scored.total,
        grade: scored.grade.clone(),
        vetoes,
        trend: Some(pb::Trend {
            previous_period: Some(convert::resolved_period(&scope.period.previous(), scope.tz)),
            previous_total,
            change: previous_total.map(|p| scored.total - p),
        }),
        provenance: Some(convert::provenance(resolved, stamp, Utc::now())),
        notes: scored.notes.clone(),
        ..Default::default()
    }
}

/// Sets ranks in the tenant (the whole board) and in each team, and sorts
/// the board best first (vetoed scorecards last, ties by agent id).
fn rank(cards: &mut [pb::Scorecard]) {
    let standings: Vec<Standing> = cards.iter().map(standing).collect();
    let of = i32::try_from(cards.len()).unwrap_or(i32::MAX);
    for (card, position) in cards.iter_mut().zip(competition_ranks(&standings)) {
        card.rank_in_tenant = Some(pb::Rank {
            position: i32::try_from(position).unwrap_or(i32::MAX),
            of,
        });
    }
    let mut teams: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, card) in cards.iter().enumerate() {
        teams.entry(card.team_id.clone()).or_default().push(i);
    }
    for members in teams.values() {
        let standings: Vec<Standing> = members.iter().map(|i| standing(&cards[*i])).collect();
        let of = i32::try_from(members.len()).unwrap_or(i32::MAX);
        for (i, position) in members.iter().zip(competition_ranks(&standings)) {
            cards[*i].rank_in_team = Some(pb::Rank {
                position: i32::try_from(position).unwrap_or(i32::MAX),
                of,
            });
        }
    }
    cards.sort_by(best_first);
}

/// Where a scorecard stands: vetoed ones below all others, then by total.
fn standing(card: &pb::Scorecard) -> Standing {
    Standing {
        vetoed: !card.vetoes.is_empty(),
        total: card.total,
    }
}

/// Board order: best standing first, ties by subject id.
fn best_first(a: &pb::Scorecard, b: &pb::Scorecard) -> std::cmp::Ordering {
    standing(a)
        .cmp_best_first(&standing(b))
        .then_with(|| subject_id(a).cmp(subject_id(b)))
}
