//! The `kpi.catalog.v1.CatalogService` handlers. Each parses and validates
//! its request at the edge, then runs one catalog operation: reads on a
//! loaded catalog, writes through [`CatalogRepo::update`] (retried on
//! concurrent changes), `validate_only` / `dry_run` on a copy never saved.
//! A write clears the tenant's versions on the version board (when Redis is
//! configured) before it is acknowledged.

use std::sync::Arc;

use chrono::Utc;
use kpi_cache::VersionBoard;
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::catalog::{
    Catalog, CatalogDocument, CatalogError, DocumentFormat, ImportSummary, VersionState,
};
use kpi_domain::error::{FieldViolation, Violations};
use kpi_domain::schema::{FactType, FieldType};
use kpi_domain::starter;
use kpi_proto::catalog as pb;
use kpi_proto::catalog::catalog_service_server::CatalogService;
use kpi_runtime::names;
use kpi_runtime::status;
use kpi_store::catalog::CatalogRepo;
use tonic::{Request, Response, Status};

use crate::mask;
use kpi_proto::convert::{self, calendar_to, indicator_to, template_to, warnings_to};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// The catalog service over its repository.
#[derive(Clone, Debug)]
pub struct CatalogApi {
    repo: CatalogRepo,
    board: Option<Arc<VersionBoard>>,
}

impl CatalogApi {
    /// The service over `repo`, clearing the tenant's versions on `board`
    /// after every write.
    pub fn new(repo: CatalogRepo, board: Option<Arc<VersionBoard>>) -> Self {
        Self { repo, board }
    }

    async fn read(&self, tenant: &str) -> Result<Catalog, Status> {
        self.repo.load(tenant).await.map_err(Status::from)
    }

    /// Runs `op` and saves its changes, or with `dry_run` runs it on a copy
    /// that is thrown away.
    async fn write<T>(
        &self,
        tenant: &str,
        dry_run: bool,
        mut op: impl FnMut(&mut Catalog) -> Result<T, CatalogError>,
    ) -> Result<T, Status> {
        if dry_run {
            let mut catalog = self.read(tenant).await?;
            return op(&mut catalog).map_err(catalog_status);
        }
        let saved = self.repo.update(tenant, op).await;
        // Before the answer: scoring must not read the old revision from the
        // board once the caller holds it. A store error may still have
        // committed, so the board is cleared then too.
        let rejected_before_saving = matches!(saved, Ok(Err(_)));
        if let (Some(board), false) = (&self.board, rejected_before_saving) {
            board.clear(tenant).await;
        }
        saved.map_err(Status::from)?.map_err(catalog_status)
    }
}

/// The status for a catalog error.
pub(crate) fn catalog_status(e: CatalogError) -> Status {
    match e {
        CatalogError::Invalid(v) => invalid(v.0),
        CatalogError::NotFound(what) => status::not_found(what),
        CatalogError::AlreadyExists(what) => status::already_exists(what),
        CatalogError::FailedPrecondition(msg) => status::failed_precondition(msg),
    }
}

fn invalid(v: Vec<FieldViolation>) -> Status {
    status::invalid_argument(
        "invalid request",
        v.into_iter().map(|v| (v.field, v.description)),
    )
}

fn invalid_conv(v: Vec<FieldViolation>) -> CatalogError {
    CatalogError::Invalid(Violations(v))
}

fn version_arg(field: &str, v: i32) -> Result<u32, Status> {
    u32::try_from(v)
        .map_err(|_| status::invalid_field(field, "a version is 0 (current) or positive"))
}

fn required<'a, T>(field: &str, v: &'a Option<T>) -> Result<&'a T, Status> {
    v.as_ref()
        .ok_or_else(|| status::invalid_field(field, "required"))
}

/// One page of items sorted by `key`, after the key in `token`.
fn page<T>(items: Vec<(String, T)>, size: u32, token: &str) -> (Vec<T>, String) {
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(k, _)| token.is_empty() || k.as_str() > token)
        .collect();
    let next = if rest.len() > size as usize {
        rest.truncate(size as usize);
        rest.last()
            .map(|(k, _)| names::encode_page_token(k))
            .unwrap_or_default()
    } else {
        String::new()
    };
    (rest.into_iter().map(|(_, v)| v).collect(), next)
}

fn summary_to(s: ImportSummary) -> pb::ImportSummary {
    pb::ImportSummary {
        created: s.created as i32,
        updated: s.updated as i32,
        unchanged: s.unchanged as i32,
        changes: s.changes,
        warnings: warnings_to(s.warnings),
    }
}

fn field_type_to(t: FieldType) -> pb::FieldType {
    match t {
        FieldType::String => pb::FieldType::String,
        FieldType::Enum => pb::FieldType::Enum,
        FieldType::Number => pb::FieldType::Number,
        FieldType::Bool => pb::FieldType::Bool,
        FieldType::Timestamp => pb::FieldType::Timestamp,
        FieldType::Duration => pb::FieldType::Duration,
    }
}

fn format_of(v: i32) -> (DocumentFormat, pb::CatalogFormat) {
    match pb::CatalogFormat::try_from(v) {
        Ok(pb::CatalogFormat::Json) => (DocumentFormat::Json, pb::CatalogFormat::Json),
        _ => (DocumentFormat::Yaml, pb::CatalogFormat::Yaml),
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn list_fact_types(
        &self,
        _: Request<pb::ListFactTypesRequest>,
    ) -> Result<Response<pb::ListFactTypesResponse>, Status> {
        let fact_types = FactType::ALL
            .iter()
            .map(|t| {
                let schema = t.schema();
                pb::FactTypeSchema {
                    fact_type: convert::fact_type_to(*t) as i32,
                    default_time_field: schema.default_time_field.to_string(),
                    fields: schema
                        .fields
                        .iter()
                        .map(|f| pb::FactField {
                            name: f.name.to_string(),
                            r#type: field_type_to(f.field_type) as i32,
                            values: f.values.iter().map(|v| v.to_string()).collect(),
                            nullable: f.nullable,
                            description: f.description.to_string(),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Response::new(pb::ListFactTypesResponse { fact_types }))
    }

    async fn create_indicator(
        &self,
        request: Request<pb::CreateIndicatorRequest>,
    ) -> Result<Response<pb::CreateIndicatorResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let incoming = required("indicator", &req.indicator)?;
        let def = convert::indicator_from(incoming, "indicator").map_err(invalid)?;
        let key = incoming.key.clone();
        let indicator = self
            .write(&tenant, req.validate_only, |c| {
                c.create_indicator(&key, def.clone(), req.activate, Utc::now())
                    .map(|v| indicator_to(&tenant, &key, v))
            })
            .await?;
        tracing::info!(tenant, key, "indicator created");
        Ok(Response::new(pb::CreateIndicatorResponse {
            indicator: Some(indicator),
            warnings: vec![],
        }))
    }

    async fn get_indicator(
        &self,
        request: Request<pb::GetIndicatorRequest>,
    ) -> Result<Response<pb::GetIndicatorResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "indicators")?;
        let n = version_arg("version", req.version)?;
        let catalog = self.read(&tenant).await?;
        let v = catalog.indicator(&key, n).map_err(catalog_status)?;
        Ok(Response::new(pb::GetIndicatorResponse {
            indicator: Some(indicator_to(&tenant, &key, v)),
        }))
    }

    async fn list_indicators(
        &self,
        request: Request<pb::ListIndicatorsRequest>,
    ) -> Result<Response<pb::ListIndicatorsResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let size = names::page_size("page_size", req.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let token = names::decode_page_token("page_token", &req.page_token)?;
        let catalog = self.read(&tenant).await?;
        let category = pb::Category::try_from(req.category).unwrap_or(pb::Category::Unspecified);
        let items = catalog
            .current_indicators()
            .filter(|(_, v)| req.show_retired || v.state != VersionState::Retired)
            .filter(|(_, v)| {
                category == pb::Category::Unspecified
                    || convert::category_to(v.def.category) == category
            })
            .map(|(k, v)| (k.clone(), indicator_to(&tenant, k, v)))
            .collect();
        let (indicators, next_page_token) = page(items, size, &token);
        Ok(Response::new(pb::ListIndicatorsResponse {
            indicators,
            next_page_token,
        }))
    }

    async fn list_indicator_versions(
        &self,
        request: Request<pb::ListIndicatorVersionsRequest>,
    ) -> Result<Response<pb::ListIndicatorVersionsResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "indicators")?;
        let size = names::page_size("page_size", req.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let token = names::decode_page_token("page_token", &req.page_token)?;
        let catalog = self.read(&tenant).await?;
        let versions = catalog
            .indicators
            .get(&key)
            .ok_or_else(|| status::not_found(format!("indicator {key}")))?;
        // Newest first: sort keys that order descending by version.
        let items = versions
            .iter()
            .rev()
            .map(|v| {
                (
                    format!("{:010}", u32::MAX - v.version),
                    indicator_to(&tenant, &key, v),
                )
            })
            .collect();
        let (indicators, next_page_token) = page(items, size, &token);
        Ok(Response::new(pb::ListIndicatorVersionsResponse {
            indicators,
            next_page_token,
        }))
    }

    async fn update_indicator(
        &self,
        request: Request<pb::UpdateIndicatorRequest>,
    ) -> Result<Response<pb::UpdateIndicatorResponse>, Status> {
        let req = request.into_inner();
        let incoming = required("indicator", &req.indicator)?;
        let (tenant, key) = names::parse_child("indicator.name", &incoming.name, "indicators")?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let (indicator, new_version) = self
            .write(&tenant, req.validate_only, |c| {
                let latest = c
                    .indicators
                    .get(&key)
                    .and_then(|v| v.last())
                    .ok_or_else(|| CatalogError::NotFound(format!("indicator {key}")))?;
                let mut merged = indicator_to(&tenant, &key, latest);
                mask::merge_indicator(&mut merged, incoming, &paths).map_err(invalid_conv)?;
                let def = convert::indicator_from(&merged, "indicator").map_err(invalid_conv)?;
                c.update_indicator(&key, def, Utc::now())
                    .map(|(v, new)| (indicator_to(&tenant, &key, v), new))
            })
            .await?;
        Ok(Response::new(pb::UpdateIndicatorResponse {
            indicator: Some(indicator),
            new_version,
            warnings: vec![],
        }))
    }

    async fn activate_indicator(
        &self,
        request: Request<pb::ActivateIndicatorRequest>,
    ) -> Result<Response<pb::ActivateIndicatorResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "indicators")?;
        let n = version_arg("version", req.version)?;
        let indicator = self
            .write(&tenant, false, |c| {
                c.activate_indicator(&key, n, Utc::now())
                    .map(|v| indicator_to(&tenant, &key, v))
            })
            .await?;
        tracing::info!(
            tenant,
            key,
            version = indicator.version,
            "indicator activated"
        );
        Ok(Response::new(pb::ActivateIndicatorResponse {
            indicator: Some(indicator),
        }))
    }

    async fn retire_indicator(
        &self,
        request: Request<pb::RetireIndicatorRequest>,
    ) -> Result<Response<pb::RetireIndicatorResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "indicators")?;
        let n = version_arg("version", req.version)?;
        let indicator = self
            .write(&tenant, false, |c| {
                c.retire_indicator(&key, n, Utc::now())
                    .map(|v| indicator_to(&tenant, &key, v))
            })
            .await?;
        tracing::info!(
            tenant,
            key,
            version = indicator.version,
            "indicator retired"
        );
        Ok(Response::new(pb::RetireIndicatorResponse {
            indicator: Some(indicator),
        }))
    }

    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::CreateTemplateResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let incoming = required("template", &req.template)?;
        let def = convert::template_from(incoming, "template").map_err(invalid)?;
        let key = incoming.key.clone();
        let (template, warnings) = self
            .write(&tenant, req.validate_only, |c| {
                c.create_template(&key, def.clone(), Utc::now())
                    .map(|(v, w)| (template_to(&tenant, &key, v), w))
            })
            .await?;
        tracing::info!(tenant, key, "template created");
        Ok(Response::new(pb::CreateTemplateResponse {
            template: Some(template),
            warnings: warnings_to(warnings),
        }))
    }

    async fn get_template(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::GetTemplateResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "templates")?;
        let n = version_arg("version", req.version)?;
        let catalog = self.read(&tenant).await?;
        let v = catalog.template(&key, n).map_err(catalog_status)?;
        Ok(Response::new(pb::GetTemplateResponse {
            template: Some(template_to(&tenant, &key, v)),
        }))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let size = names::page_size("page_size", req.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let token = names::decode_page_token("page_token", &req.page_token)?;
        let catalog = self.read(&tenant).await?;
        let items = catalog
            .current_templates()
            .filter(|(_, v)| req.show_retired || v.state != VersionState::Retired)
            .map(|(k, v)| (k.clone(), template_to(&tenant, k, v)))
            .collect();
        let (templates, next_page_token) = page(items, size, &token);
        Ok(Response::new(pb::ListTemplatesResponse {
            templates,
            next_page_token,
        }))
    }

    async fn list_template_versions(
        &self,
        request: Request<pb::ListTemplateVersionsRequest>,
    ) -> Result<Response<pb::ListTemplateVersionsResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "templates")?;
        let size = names::page_size("page_size", req.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let token = names::decode_page_token("page_token", &req.page_token)?;
        let catalog = self.read(&tenant).await?;
        let versions = catalog
            .templates
            .get(&key)
            .ok_or_else(|| status::not_found(format!("template {key}")))?;
        let items = versions
            .iter()
            .rev()
            .map(|v| {
                (
                    format!("{:010}", u32::MAX - v.version),
                    template_to(&tenant, &key, v),
                )
            })
            .collect();
        let (templates, next_page_token) = page(items, size, &token);
        Ok(Response::new(pb::ListTemplateVersionsResponse {
            templates,
            next_page_token,
        }))
    }

    async fn update_template(
        &self,
        request: Request<pb::UpdateTemplateRequest>,
    ) -> Result<Response<pb::UpdateTemplateResponse>, Status> {
        let req = request.into_inner();
        let incoming = required("template", &req.template)?;
        let (tenant, key) = names::parse_child("template.name", &incoming.name, "templates")?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let (template, new_version, warnings) = self
            .write(&tenant, req.validate_only, |c| {
                let latest = c
                    .templates
                    .get(&key)
                    .and_then(|v| v.last())
                    .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
                let mut merged = template_to(&tenant, &key, latest);
                mask::merge_template(&mut merged, incoming, &paths).map_err(invalid_conv)?;
                let def = convert::template_from(&merged, "template").map_err(invalid_conv)?;
                c.update_template(&key, def, Utc::now())
                    .map(|(v, new, w)| (template_to(&tenant, &key, v), new, w))
            })
            .await?;
        Ok(Response::new(pb::UpdateTemplateResponse {
            template: Some(template),
            new_version,
            warnings: warnings_to(warnings),
        }))
    }

    async fn activate_template(
        &self,
        request: Request<pb::ActivateTemplateRequest>,
    ) -> Result<Response<pb::ActivateTemplateResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "templates")?;
        let n = version_arg("version", req.version)?;
        let (template, closed) = self
            .write(&tenant, false, |c| {
                c.activate_template(&key, n, Utc::now())
                    .map(|(v, closed)| (template_to(&tenant, &key, v), closed))
            })
            .await?;
        tracing::info!(
            tenant,
            key,
            version = template.version,
            "template activated"
        );
        Ok(Response::new(pb::ActivateTemplateResponse {
            template: Some(template),
            closed_versions: closed.into_iter().map(|v| v as i32).collect(),
        }))
    }

    async fn retire_template(
        &self,
        request: Request<pb::RetireTemplateRequest>,
    ) -> Result<Response<pb::RetireTemplateResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "templates")?;
        let n = version_arg("version", req.version)?;
        let template = self
            .write(&tenant, false, |c| {
                c.retire_template(&key, n, Utc::now())
                    .map(|v| template_to(&tenant, &key, v))
            })
            .await?;
        tracing::info!(tenant, key, version = template.version, "template retired");
        Ok(Response::new(pb::RetireTemplateResponse {
            template: Some(template),
        }))
    }

    async fn resolve_template(
        &self,
        request: Request<pb::ResolveTemplateRequest>,
    ) -> Result<Response<pb::ResolveTemplateResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let n = version_arg("version", req.version)?;
        let mut p = convert::Problems::default();
        let date = convert::date_from(&req.date, "date", &mut p);
        let date = match date {
            Some(d) if p.0.is_empty() => d,
            _ => return Err(invalid(p.0)),
        };
        if n > 0 && req.template.is_empty() {
            return Err(status::invalid_field(
                "template",
                "a version needs a template key",
            ));
        }
        let catalog = self.read(&tenant).await?;
        let key = (!req.template.is_empty()).then_some(req.template.as_str());
        let resolved = catalog
            .resolve(key, n, &req.role, &req.team, &req.cohort, date)
            .map_err(catalog_status)?;
        Ok(Response::new(pb::ResolveTemplateResponse {
            template: Some(template_to(&tenant, &resolved.key, resolved.template)),
            indicators: resolved
                .indicators
                .iter()
                .map(|(k, v)| indicator_to(&tenant, k, v))
                .collect(),
            calendar: resolved.calendar.map(|c| calendar_to(&tenant, c)),
        }))
    }

    async fn get_catalog_revision(
        &self,
        request: Request<pb::GetCatalogRevisionRequest>,
    ) -> Result<Response<pb::GetCatalogRevisionResponse>, Status> {
        let tenant = names::parse_parent("parent", &request.into_inner().parent)?;
        let revision = self.repo.revision(&tenant).await.map_err(Status::from)?;
        Ok(Response::new(pb::GetCatalogRevisionResponse { revision }))
    }

    async fn upsert_calendar(
        &self,
        request: Request<pb::UpsertCalendarRequest>,
    ) -> Result<Response<pb::UpsertCalendarResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let incoming = required("calendar", &req.calendar)?;
        let calendar = convert::calendar_from(incoming, "calendar").map_err(invalid)?;
        let stored = self
            .write(&tenant, false, |c| {
                c.upsert_calendar(calendar.clone())
                    .map(|c| calendar_to(&tenant, c))
            })
            .await?;
        Ok(Response::new(pb::UpsertCalendarResponse {
            calendar: Some(stored),
        }))
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::GetCalendarResponse>, Status> {
        let req = request.into_inner();
        let (tenant, key) = names::parse_child("name", &req.name, "calendars")?;
        let catalog = self.read(&tenant).await?;
        let calendar = catalog
            .calendars
            .get(&key)
            .ok_or_else(|| status::not_found(format!("calendar {key}")))?;
        Ok(Response::new(pb::GetCalendarResponse {
            calendar: Some(calendar_to(&tenant, calendar)),
        }))
    }

    async fn list_calendars(
        &self,
        request: Request<pb::ListCalendarsRequest>,
    ) -> Result<Response<pb::ListCalendarsResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let size = names::page_size("page_size", req.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let token = names::decode_page_token("page_token", &req.page_token)?;
        let catalog = self.read(&tenant).await?;
        let items = catalog
            .calendars
            .iter()
            .map(|(k, c)| (k.clone(), calendar_to(&tenant, c)))
            .collect();
        let (calendars, next_page_token) = page(items, size, &token);
        Ok(Response::new(pb::ListCalendarsResponse {
            calendars,
            next_page_token,
        }))
    }

    async fn install_starter_kit(
        &self,
        request: Request<pb::InstallStarterKitRequest>,
    ) -> Result<Response<pb::InstallStarterKitResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let time_zone = if req.time_zone.is_empty() {
            "UTC".to_string()
        } else {
            req.time_zone.clone()
        };
        let default_calendar = BusinessCalendar {
            time_zone,
            ..BusinessCalendar::utc_default()
        };
        default_calendar.validate().map_err(|v| {
            invalid(
                v.0.into_iter()
                    .filter(|v| v.field == "time_zone")
                    .map(|v| FieldViolation::new("time_zone", v.description))
                    .collect(),
            )
        })?;
        let kit = starter::starter_kit().map_err(|e| status::internal("starter kit", &e))?;
        let summary = self
            .write(&tenant, false, |c| {
                let calendar_added = !c.calendars.contains_key("default");
                if calendar_added {
                    c.upsert_calendar(default_calendar.clone())?;
                }
                let mut summary = c.import(&kit, Utc::now())?;
                if calendar_added {
                    summary.created += 1;
                    summary.changes.insert(
                        0,
                        format!("calendar default ({}) created", default_calendar.time_zone),
                    );
                }
                Ok(summary)
            })
            .await?;
        tracing::info!(
            tenant,
            created = summary.created,
            unchanged = summary.unchanged,
            "starter kit installed"
        );
        Ok(Response::new(pb::InstallStarterKitResponse {
            summary: Some(summary_to(summary)),
        }))
    }

    async fn export_catalog(
        &self,
        request: Request<pb::ExportCatalogRequest>,
    ) -> Result<Response<pb::ExportCatalogResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let (format, pb_format) = format_of(req.format);
        let catalog = self.read(&tenant).await?;
        let content = catalog
            .export()
            .render(format)
            .map_err(|e| Status::internal(format!("cannot render the catalog: {e}")))?;
        Ok(Response::new(pb::ExportCatalogResponse {
            content,
            format: pb_format as i32,
        }))
    }

    async fn import_catalog(
        &self,
        request: Request<pb::ImportCatalogRequest>,
    ) -> Result<Response<pb::ImportCatalogResponse>, Status> {
        let req = request.into_inner();
        let tenant = names::parse_parent("parent", &req.parent)?;
        let doc = CatalogDocument::parse(&req.content).map_err(|v| invalid(v.0))?;
        let summary = self
            .write(&tenant, req.dry_run, |c| c.import(&doc, Utc::now()))
            .await?;
        tracing::info!(
            tenant,
            dry_run = req.dry_run,
            created = summary.created,
            updated = summary.updated,
            "catalog imported"
        );
        Ok(Response::new(pb::ImportCatalogResponse {
            summary: Some(summary_to(summary)),
        }))
    }
}
