//! `kpictl simulate`: a past period scored with a template version (or a
//! draft from a file, saved first through ImportCatalog) and compared,
//! agent by agent, with the active version (scoring's SimulateTemplate,
//! every page).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use kpi_proto::catalog as cat;
use kpi_proto::scoring as pb;
use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

use super::cli::SimulateArgs;
use super::{Printed, parent, period, to_json};
use crate::cli::Cli;
use crate::client::{self, CallError, ClientConfig, Service};
use crate::scorecards::number;

/// Where the definition sits in the document a draft file is wrapped in.
const DEFINITION_PATH: &str = "templates[0].versions[0].definition";

/// One agent's totals under both versions.
#[derive(Debug, Clone, Serialize)]
pub struct SimulatedRow {
    /// The agent.
    pub agent: String,
    /// The total under the active version; absent if none applied.
    pub active_total: Option<f64>,
    /// The grade under the active version.
    pub active_grade: String,
    /// The total under the simulated version.
    pub simulated_total: f64,
    /// The grade under the simulated version.
    pub simulated_grade: String,
    /// simulated − active.
    pub change: Option<f64>,
    /// Per indicator: simulated score − active score.
    pub score_changes: BTreeMap<String, f64>,
}

/// What `simulate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    /// The template key.
    pub template: String,
    /// The version simulated.
    pub version: i32,
    /// The active version compared against; 0 if none.
    pub active_version: i32,
    /// Whether the version was saved from `--file` by this run.
    pub saved_from_file: bool,
    /// The mean change of the totals.
    pub mean_change: f64,
    /// Per agent, largest change first.
    pub rows: Vec<SimulatedRow>,
}

/// Runs `kpictl simulate`.
pub async fn run(cli: &Cli, args: &SimulateArgs) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let period = period::parse(&args.period.period)?;
    let version = match (args.version, &args.file) {
        (Some(version), _) => version,
        (None, Some(file)) => {
            let config = ClientConfig::from_cli(cli, Service::Catalog, false);
            save_draft(&config, &parent, &args.template, file).await?
        }
        (None, None) => return Err(CallError::usage("give --version or --file")),
    };
    let config = ClientConfig::from_cli(cli, Service::Scoring, false);
    let mut scoring = client::scoring(&config).await?;
    let mut request = pb::SimulateTemplateRequest {
        parent,
        template: args.template.clone(),
        version,
        period: Some(period),
        team_id: args.team.clone().unwrap_or_default(),
        page_size: 500,
        page_token: String::new(),
    };
    let mut simulation = Simulation {
        template: args.template.clone(),
        version,
        active_version: 0,
        saved_from_file: args.version.is_none(),
        mean_change: 0.0,
        rows: Vec::new(),
    };
    loop {
        let page = scoring
            .simulate_template(request.clone())
            .await
            .map_err(|s| config.call_error("SimulateTemplate", &s))?
            .into_inner();
        simulation.active_version = page.active_version;
        simulation.mean_change = page.mean_change;
        simulation.rows.extend(page.rows.into_iter().map(row));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    Ok(Printed {
        text: text(&simulation),
        json: to_json(&simulation)?,
    })
}

fn row(r: pb::SimulationRow) -> SimulatedRow {
    SimulatedRow {
        agent: r.agent_id,
        active_total: r.active_total,
        active_grade: r.active_grade,
        simulated_total: r.simulated_total,
        simulated_grade: r.simulated_grade,
        change: r.change,
        score_changes: r.score_changes.into_iter().collect(),
    }
}

/// Saves the definition in `file` as the template's draft: over the latest
/// version if that is a draft, else as a new version. Returns its number.
async fn save_draft(
    config: &ClientConfig,
    parent: &str,
    template: &str,
    file: &Path,
) -> Result<i32, CallError> {
    let name = file.display().to_string();
    let definition = read_definition(file)?;
    let mut catalog = client::catalog(config).await?;
    let latest = catalog
        .list_template_versions(cat::ListTemplateVersionsRequest {
            name: format!("{parent}/templates/{template}"),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .map_err(|s| config.call_error("ListTemplateVersions", &s))?
        .into_inner()
        .templates
        .into_iter()
        .next()
        .ok_or_else(|| CallError::usage(format!("template {template} has no versions")))?;
    let version = if latest.state == cat::VersionState::Draft as i32 {
        latest.version
    } else {
        latest.version + 1
    };
    let content = document(template, version, definition)?;
    catalog
        .import_catalog(cat::ImportCatalogRequest {
            parent: parent.into(),
            content,
            format: cat::CatalogFormat::Yaml as i32,
            dry_run: false,
        })
        .await
        .map_err(|s| in_file(config.call_error("ImportCatalog", &s), &name))?;
    Ok(version)
}

/// The file as a YAML (or JSON) mapping.
fn read_definition(file: &Path) -> Result<Value, CallError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| CallError::usage(format!("cannot read {name}: {e}")))?;
    let value: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| CallError::usage(format!("{name}: not YAML or JSON: {e}")))?;
    if !value.is_mapping() {
        return Err(CallError::usage(format!(
            "{name}: expected a template definition (a mapping with items, grades, …)"
        )));
    }
    Ok(value)
}

/// The one-version catalog document ImportCatalog takes.
fn document(template: &str, version: i32, definition: Value) -> Result<String, CallError> {
    let mut entry = Mapping::new();
    entry.insert("version".into(), version.into());
    entry.insert("state".into(), "draft".into());
    entry.insert("definition".into(), definition);
    let mut key = Mapping::new();
    key.insert("key".into(), template.into());
    key.insert("versions".into(), Value::Sequence(vec![entry.into()]));
    let mut doc = Mapping::new();
    doc.insert(
        "api_version".into(),
        kpi_domain::catalog::DOCUMENT_API_VERSION.into(),
    );
    doc.insert("templates".into(), Value::Sequence(vec![key.into()]));
    serde_yaml_ng::to_string(&doc)
        .map_err(|e| CallError::usage(format!("cannot write the draft document: {e}")))
}

/// A refusal of the wrapped document, with paths inside the file.
fn in_file(mut error: CallError, file: &str) -> CallError {
    let inner = |path: &str| {
        path.replace(&format!("{DEFINITION_PATH}."), "")
            .replace(DEFINITION_PATH, "(definition)")
    };
    error.message = format!("{file}: {}", inner(&error.message));
    error.fields = error.fields.iter().map(|f| inner(f)).collect();
    error
}

fn text(s: &Simulation) -> String {
    let mut out = String::new();
    let saved = if s.saved_from_file {
        " (saved as draft from the file)"
    } else {
        ""
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "template {} v{}{saved} against active v{}: {} agents, mean change {:+.2}",
        s.template,
        s.version,
        s.active_version,
        s.rows.len(),
        s.mean_change
    );
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:<6} {:>7} {:<6} {:>7}",
        "AGENT", "ACTIVE", "GRADE", "DRAFT", "GRADE", "CHANGE"
    );
    for r in &s.rows {
        let change = r.change.map_or_else(|| "–".into(), |c| format!("{c:+.1}"));
        let _ = writeln!(
            out,
            "{:<15} {:>7} {:<6} {:>7.1} {:<6} {:>7}",
            r.agent,
            number(r.active_total),
            r.active_grade,
            r.simulated_total,
            r.simulated_grade,
            change
        );
    }
    out
}
