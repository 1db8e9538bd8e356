//! A tenant's whole catalog in memory, and every operation on it: creating,
//! updating, activating and retiring indicator and template versions,
//! calendars, resolving the template that applies to a subject, export and
//! import. All lifecycle rules live here; storage only loads a catalog,
//! applies one operation and writes back the rows it marked dirty.
//!
//! The rules: only DRAFT versions change; changing an ACTIVE or RETIRED
//! version makes a new DRAFT; activating an indicator retires its previous
//! active version; activating a template pins the indicator versions it
//! uses and refuses overlapping effective ranges (an open-ended predecessor
//! is closed at the new version's start).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::BusinessCalendar;
use crate::error::{FieldViolation, Violations, join_path};
use crate::indicator::{IndicatorDef, check_derived_graph, check_key, dependency_closure};
use crate::template::{EffectiveRange, IndicatorFacts, TemplateDef, plan_activation};

/// The lifecycle state of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Editable, not used for scoring.
    Draft,
    /// Used for scoring; immutable.
    Active,
    /// Superseded or withdrawn; immutable, still readable.
    Retired,
}

impl VersionState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Draft => "draft",
            VersionState::Active => "active",
            VersionState::Retired => "retired",
        }
    }
}

/// One stored version of a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Version<T> {
    /// The version number, from 1.
    pub version: u32,
    /// Its state.
    pub state: VersionState,
    /// The definition.
    pub def: T,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One indicator version.
pub type IndicatorVersion = Version<IndicatorDef>;
/// One template version.
pub type TemplateVersion = Version<TemplateDef>;

/// A row of the catalog that an operation changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// An indicator version.
    Indicator(String, u32),
    /// A template version.
    Template(String, u32),
    /// A calendar.
    Calendar(String),
}

/// Why a catalog operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// Bad input, with every offending field.
    #[error("{0}")]
    Invalid(#[from] Violations),
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// It exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
}

fn invalid(field: impl Into<String>, description: impl Into<String>) -> CatalogError {
    CatalogError::Invalid(Violations::one(field, description))
}

/// A tenant's catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Indicator versions by key, oldest first.
    pub indicators: BTreeMap<String, Vec<IndicatorVersion>>,
    /// Template versions by key, oldest first.
    pub templates: BTreeMap<String, Vec<TemplateVersion>>,
    /// Calendars by key.
    pub calendars: BTreeMap<String, BusinessCalendar>,
    dirty: BTreeSet<Row>,
}

/// The template version that applies, with what scoring needs.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The template key.
    pub key: String,
    /// The version.
    pub template: &'a TemplateVersion,
    /// Every indicator it needs, at the pinned versions.
    pub indicators: Vec<(&'a str, &'a IndicatorVersion)>,
    /// The tenant's default calendar.
    pub calendar: Option<&'a BusinessCalendar>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    /// Versions or calendars created.
    pub created: u32,
    /// Versions or calendars changed.
    pub updated: u32,
    /// Entries already as the document says.
    pub unchanged: u32,
    /// One line per change.
    pub changes: Vec<String>,
    /// Advisory problems.
    pub warnings: Vec<FieldViolation>,
}

impl<T> Version<T> {
    fn new(version: u32, state: VersionState, def: T, now: DateTime<Utc>) -> Self {
        Self {
            version,
            state,
            def,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The version that is "current": the newest active, else the newest.
fn current<T>(versions: &[Version<T>]) -> Option<&Version<T>> {
    versions
        .iter()
        .rev()
        .find(|v| v.state == VersionState::Active)
        .or(versions.last())
}

/// Looks up version `n` (0 = current).
fn pick<'a, T>(
    what: &str,
    key: &str,
    versions: &'a [Version<T>],
    n: u32,
) -> Result<&'a Version<T>, CatalogError> {
    let found = if n == 0 {
        current(versions)
    } else {
        versions.iter().find(|v| v.version == n)
    };
    found.ok_or_else(|| CatalogError::NotFound(format!("{what} {key} version {n}")))
}

impl Catalog {
    /// A catalog from stored rows (nothing dirty).
    pub fn from_parts(
        indicators: BTreeMap<String, Vec<IndicatorVersion>>,
        templates: BTreeMap<String, Vec<TemplateVersion>>,
        calendars: BTreeMap<String, BusinessCalendar>,
    ) -> Self {
        let mut catalog = Self {
            indicators,
            templates,
            calendars,
            dirty: BTreeSet::new(),
        };
        for versions in catalog.indicators.values_mut() {
            versions.sort_by_key(|v| v.version);
        }
        for versions in catalog.templates.values_mut() {
            versions.sort_by_key(|v| v.version);
        }
        catalog
    }

    /// The rows changed since loading, and forgets them.
    pub fn take_dirty(&mut self) -> BTreeSet<Row> {
        std::mem::take(&mut self.dirty)
    }

    /// Version `n` of an indicator (0 = the current one).
    pub fn indicator(&self, key: &str, n: u32) -> Result<&IndicatorVersion, CatalogError> {
        let versions = self
            .indicators
            .get(key)
            .ok_or_else(|| CatalogError::NotFound(format!("indicator {key}")))?;
        pick("indicator", key, versions, n)
    }

    /// Version `n` of a template (0 = the current one).
    pub fn template(&self, key: &str, n: u32) -> Result<&TemplateVersion, CatalogError> {
        let versions = self
            .templates
            .get(key)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        pick("template", key, versions, n)
    }

    /// The current version of every indicator, by key.
    pub fn current_indicators(&self) -> impl Iterator<Item = (&String, &IndicatorVersion)> {
        self.indicators
            .iter()
            .filter_map(|(k, v)| current(v).map(|c| (k, c)))
    }

    /// The current version of every template, by key.
    pub fn current_templates(&self) -> impl Iterator<Item = (&String, &TemplateVersion)> {
        self.templates
            .iter()
            .filter_map(|(k, v)| current(v).map(|c| (k, c)))
    }

    fn facts_of(&self, key: &str) -> Option<IndicatorFacts> {
        self.indicator(key, 0).ok().map(|v| IndicatorFacts {
            category: v.def.category,
            direction: v.def.direction,
            has_default_target: v.def.default_target.is_some(),
            has_default_scoring: v.def.default_scoring.is_some(),
        })
    }

    /// Validates an indicator definition in the context of this catalog
    /// (as if `key` had `def`), with paths under `path`.
    fn check_indicator(&self, path: &str, key: &str, def: &IndicatorDef) -> Vec<FieldViolation> {
        let mut out: Vec<FieldViolation> =
            def.check().into_iter().map(|v| v.nested(path)).collect();
        let mut defs: BTreeMap<String, &IndicatorDef> = self
            .current_indicators()
            .map(|(k, v)| (k.clone(), &v.def))
            .collect();
        defs.insert(key.to_string(), def);
        out.extend(
            check_derived_graph(&defs, &|k| {
                if k == key {
                    path.to_string()
                } else {
                    format!("(indicator {k})")
                }
            })
            .into_iter()
            .filter(|v| v.field.starts_with(path)),
        );
        out
    }

    fn check_template(&self, path: &str, def: &TemplateDef) -> Vec<FieldViolation> {
        def.check(&|k| self.facts_of(k))
            .into_iter()
            .map(|v| v.nested(path))
            .collect()
    }

    fn template_warnings(&self, path: &str, def: &TemplateDef) -> Vec<FieldViolation> {
        def.weight_warnings(&|k| self.facts_of(k).map(|f| f.category))
            .into_iter()
            .map(|v| v.nested(path))
            .collect()
    }

    /// Creates an indicator as version 1.
    pub fn create_indicator(
        &mut self,
        key: &str,
        mut def: IndicatorDef,
        activate: bool,
        now: DateTime<Utc>,
    ) -> Result<&IndicatorVersion, CatalogError> {
        if let Some(v) = check_key("indicator.key", key) {
            return Err(Violations(vec![v]).into());
        }
        if self.indicators.contains_key(key) {
            return Err(CatalogError::AlreadyExists(format!("indicator {key}")));
        }
        def.normalize();
        Violations::into_result(self.check_indicator("indicator", key, &def))?;
        let state = if activate {
            VersionState::Active
        } else {
            VersionState::Draft
        };
        self.indicators
            .insert(key.to_string(), vec![Version::new(1, state, def, now)]);
        self.dirty.insert(Row::Indicator(key.to_string(), 1));
        self.indicator(key, 1)
    }

    /// Changes an indicator: edits the latest version while it is a draft,
    /// else makes a new draft. Returns the version and whether it is new.
    pub fn update_indicator(
        &mut self,
        key: &str,
        mut def: IndicatorDef,
        now: DateTime<Utc>,
    ) -> Result<(&IndicatorVersion, bool), CatalogError> {
        def.normalize();
        let latest = self
            .indicators
            .get(key)
            .and_then(|v| v.last())
            .ok_or_else(|| CatalogError::NotFound(format!("indicator {key}")))?;
        if latest.def == def {
            let n = latest.version;
            return Ok((self.indicator(key, n)?, false));
        }
        Violations::into_result(self.check_indicator("indicator", key, &def))?;
        let versions = self
            .indicators
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("indicator {key}")))?;
        let (n, new) = upsert_draft(versions, def, now);
        self.dirty.insert(Row::Indicator(key.to_string(), n));
        Ok((self.indicator(key, n)?, new))
    }

    /// Makes a version active (0 = the latest); the active one before it is retired.
    pub fn activate_indicator(
        &mut self,
        key: &str,
        n: u32,
        now: DateTime<Utc>,
    ) -> Result<&IndicatorVersion, CatalogError> {
        let versions = self
            .indicators
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("indicator {key}")))?;
        let target = if n == 0 {
            versions.last().map(|v| v.version).unwrap_or(0)
        } else {
            n
        };
        let idx = versions
            .iter()
            .position(|v| v.version == target)
            .ok_or_else(|| CatalogError::NotFound(format!("indicator {key} version {n}")))?;
        match versions[idx].state {
            VersionState::Active => return self.indicator(key, target),
            VersionState::Retired => {
                return Err(CatalogError::FailedPrecondition(format!(
                    "indicator {key} version {target} is retired; update it to make a new draft"
                )));
            }
            VersionState::Draft => {}
        }
        for v in versions
            .iter_mut()
            .filter(|v| v.state == VersionState::Active)
        {
            v.state = VersionState::Retired;
            v.updated_at = now;
            self.dirty
                .insert(Row::Indicator(key.to_string(), v.version));
        }
        versions[idx].state = VersionState::Active;
        versions[idx].updated_at = now;
        self.dirty.insert(Row::Indicator(key.to_string(), target));
        self.indicator(key, target)
    }

    /// Retires a version (0 = the active one).
    pub fn retire_indicator(
        &mut self,
        key: &str,
        n: u32,
        now: DateTime<Utc>,
    ) -> Result<&IndicatorVersion, CatalogError> {
        let versions = self
            .indicators
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("indicator {key}")))?;
        let target = retire_in(versions, n, now).map_err(|e| e.for_what("indicator", key))?;
        self.dirty.insert(Row::Indicator(key.to_string(), target));
        self.indicator(key, target)
    }

    /// Creates a template as draft version 1; returns it with advisory warnings.
    pub fn create_template(
        &mut self,
        key: &str,
        mut def: TemplateDef,
        now: DateTime<Utc>,
    ) -> Result<(&TemplateVersion, Vec<FieldViolation>), CatalogError> {
        if let Some(v) = check_key("template.key", key) {
            return Err(Violations(vec![v]).into());
        }
        if self.templates.contains_key(key) {
            return Err(CatalogError::AlreadyExists(format!("template {key}")));
        }
        def.normalize();
        def.pinned_indicators.clear();
        Violations::into_result(self.check_template("template", &def))?;
        let warnings = self.template_warnings("template", &def);
        self.templates.insert(
            key.to_string(),
            vec![Version::new(1, VersionState::Draft, def, now)],
        );
        self.dirty.insert(Row::Template(key.to_string(), 1));
        Ok((self.template(key, 1)?, warnings))
    }

    /// Changes a template (draft edited in place, else a new draft).
    pub fn update_template(
        &mut self,
        key: &str,
        mut def: TemplateDef,
        now: DateTime<Utc>,
    ) -> Result<(&TemplateVersion, bool, Vec<FieldViolation>), CatalogError> {
        def.normalize();
        def.pinned_indicators.clear();
        let latest = self
            .templates
            .get(key)
            .and_then(|v| v.last())
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        let mut unpinned = latest.def.clone();
        unpinned.pinned_indicators.clear();
        if unpinned == def {
            let n = latest.version;
            return Ok((self.template(key, n)?, false, vec![]));
        }
        Violations::into_result(self.check_template("template", &def))?;
        let warnings = self.template_warnings("template", &def);
        let versions = self
            .templates
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        let (n, new) = upsert_draft(versions, def, now);
        self.dirty.insert(Row::Template(key.to_string(), n));
        Ok((self.template(key, n)?, new, warnings))
    }

    /// The pinned version of every indicator a template needs: explicit item
    /// versions, else the active version, for items, vetoes, alerts and what
    /// derived indicators refer to.
    fn pin_indicators(&self, def: &TemplateDef) -> Result<BTreeMap<String, u32>, Violations> {
        let explicit: BTreeMap<&str, u32> = def
            .items
            .iter()
            .filter(|i| i.indicator_version > 0)
            .map(|i| (i.indicator.as_str(), i.indicator_version))
            .collect();
        let roots = def.referenced_indicators();
        let refs_of = |k: &str| {
            let n = explicit.get(k).copied().unwrap_or(0);
            self.indicator(k, n).ok().map(|v| v.def.formula_refs())
        };
        let mut pinned = BTreeMap::new();
        let mut problems = Vec::new();
        for key in dependency_closure(roots.iter().map(String::as_str), &refs_of) {
            let found = match explicit.get(key.as_str()) {
                Some(&n) => self
                    .indicator(&key, n)
                    .ok()
                    .filter(|v| v.state != VersionState::Draft),
                None => self
                    .indicators
                    .get(&key)
                    .and_then(|vs| vs.iter().rev().find(|v| v.state == VersionState::Active)),
            };
            match found {
                Some(v) => {
                    pinned.insert(key, v.version);
                }
                None => {
                    let path = def
                        .items
                        .iter()
                        .position(|i| i.indicator == key)
                        .map_or("pinned_indicators".to_string(), |i| {
                            format!("items[{i}].indicator")
                        });
                    problems.push(FieldViolation::new(
                        path,
                        format!(
                            "indicator \"{key}\" has no active version to pin (activate it first)"
                        ),
                    ));
                }
            }
        }
        Violations::into_result(problems).map(|()| pinned)
    }

    /// Activates a template version (0 = the latest): pins its indicators and
    /// closes an open-ended predecessor. Returns it and the versions closed.
    pub fn activate_template(
        &mut self,
        key: &str,
        n: u32,
        now: DateTime<Utc>,
    ) -> Result<(&TemplateVersion, Vec<u32>), CatalogError> {
        let versions = self
            .templates
            .get(key)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        let target = if n == 0 {
            versions.last().map(|v| v.version).unwrap_or(0)
        } else {
            n
        };
        let version = versions
            .iter()
            .find(|v| v.version == target)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key} version {n}")))?;
        match version.state {
            VersionState::Active => return Ok((self.template(key, target)?, vec![])),
            VersionState::Retired => {
                return Err(CatalogError::FailedPrecondition(format!(
                    "template {key} version {target} is retired; update it to make a new draft"
                )));
            }
            VersionState::Draft => {}
        }
        Violations::into_result(self.check_template("template", &version.def))?;
        let pinned = self.pin_indicators(&version.def)?;
        let range = EffectiveRange {
            version: target,
            from: version.def.effective_from,
            until: version.def.effective_until,
        };
        let active: Vec<EffectiveRange> = versions
            .iter()
            .filter(|v| v.state == VersionState::Active)
            .map(|v| EffectiveRange {
                version: v.version,
                from: v.def.effective_from,
                until: v.def.effective_until,
            })
            .collect();
        let closes =
            plan_activation(range, &active).map_err(|v| Violations(vec![v.nested("template")]))?;
        let versions = self
            .templates
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        for v in versions.iter_mut() {
            if let Some((_, until)) = closes.iter().find(|(n, _)| *n == v.version) {
                v.def.effective_until = Some(*until);
                v.updated_at = now;
                self.dirty.insert(Row::Template(key.to_string(), v.version));
            }
            if v.version == target {
                v.state = VersionState::Active;
                v.def.pinned_indicators = pinned.clone();
                v.updated_at = now;
                self.dirty.insert(Row::Template(key.to_string(), target));
            }
        }
        Ok((
            self.template(key, target)?,
            closes.into_iter().map(|(n, _)| n).collect(),
        ))
    }

    /// Retires a template version (0 = the current active one).
    pub fn retire_template(
        &mut self,
        key: &str,
        n: u32,
        now: DateTime<Utc>,
    ) -> Result<&TemplateVersion, CatalogError> {
        let versions = self
            .templates
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        let target = retire_in(versions, n, now).map_err(|e| e.for_what("template", key))?;
        self.dirty.insert(Row::Template(key.to_string(), target));
        self.template(key, target)
    }

    /// Creates or replaces a calendar.
    pub fn upsert_calendar(
        &mut self,
        calendar: BusinessCalendar,
    ) -> Result<&BusinessCalendar, CatalogError> {
        calendar.validate().map_err(|v| {
            Violations(
                v.0.into_iter()
                    .map(|v| v.nested("calendar"))
                    .collect::<Vec<_>>(),
            )
        })?;
        let key = calendar.key.clone();
        if self.calendars.get(&key) != Some(&calendar) {
            self.dirty.insert(Row::Calendar(key.clone()));
            self.calendars.insert(key.clone(), calendar);
        }
        self.calendars
            .get(&key)
            .ok_or_else(|| CatalogError::NotFound(format!("calendar {key}")))
    }

    /// The template version that applies to a subject on `date`: `key` and
    /// `n` name one explicitly (n = 0: the active version effective on the
    /// date); otherwise the applicable active template that is the most
    /// specific, then of the highest priority, then of the lowest key.
    pub fn resolve(
        &self,
        key: Option<&str>,
        n: u32,
        role: &str,
        team: &str,
        cohort: &str,
        date: NaiveDate,
    ) -> Result<Resolved<'_>, CatalogError> {
        let effective = |v: &&TemplateVersion| {
            v.state == VersionState::Active
                && EffectiveRange {
                    version: v.version,
                    from: v.def.effective_from,
                    until: v.def.effective_until,
                }
                .contains(date)
        };
        let (key, template) = match key {
            Some(key) if n > 0 => (key, self.template(key, n)?),
            Some(key) => {
                let versions = self.templates.get(key).ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
                let v = versions.iter().rev().find(effective).ok_or_else(|| CatalogError::FailedPrecondition(format!("template {key} has no active version effective on {date}")))?;
                (key, v)
            }
            None => self
                .templates
                .iter()
                .filter_map(|(k, vs)| vs.iter().rev().find(effective).map(|v| (k.as_str(), v)))
                .filter(|(_, v)| v.def.applicability.matches(role, team, cohort))
                .max_by(|(ka, a), (kb, b)| {
                    let rank = |v: &TemplateVersion| (v.def.applicability.specificity(), v.def.applicability.priority);
                    rank(a).cmp(&rank(b)).then_with(|| kb.cmp(ka))
                })
                .ok_or_else(|| CatalogError::FailedPrecondition(format!("no active template applies to role \"{role}\", team \"{team}\", cohort \"{cohort}\" on {date}")))?,
        };
        let pinned = if template.state == VersionState::Draft {
            self.pin_indicators(&template.def)?
        } else {
            template.def.pinned_indicators.clone()
        };
        let mut indicators = Vec::with_capacity(pinned.len());
        for (k, v) in &pinned {
            let (k, versions) = self
                .indicators
                .get_key_value(k)
                .ok_or_else(|| CatalogError::NotFound(format!("indicator {k}")))?;
            let version = versions
                .iter()
                .find(|x| x.version == *v)
                .ok_or_else(|| CatalogError::NotFound(format!("indicator {k} version {v}")))?;
            indicators.push((k.as_str(), version));
        }
        Ok(Resolved {
            key: key.to_string(),
            template,
            indicators,
            calendar: self.calendars.get("default"),
        })
    }
}

/// Replaces the latest draft, or appends a new draft. Returns (version, new).
fn upsert_draft<T>(versions: &mut Vec<Version<T>>, def: T, now: DateTime<Utc>) -> (u32, bool) {
    match versions.last_mut() {
        Some(latest) if latest.state == VersionState::Draft => {
            latest.def = def;
            latest.updated_at = now;
            (latest.version, false)
        }
        latest => {
            let n = latest.map_or(1, |l| l.version + 1);
            versions.push(Version::new(n, VersionState::Draft, def, now));
            (n, true)
        }
    }
}

/// A retire that could not be done, before it is named.
enum RetireError {
    NoActive,
    Missing(u32),
    AlreadyRetired(u32),
}

impl RetireError {
    fn for_what(self, what: &str, key: &str) -> CatalogError {
        match self {
            RetireError::NoActive => CatalogError::FailedPrecondition(format!(
                "{what} {key} has no active version to retire"
            )),
            RetireError::Missing(n) => CatalogError::NotFound(format!("{what} {key} version {n}")),
            RetireError::AlreadyRetired(n) => CatalogError::FailedPrecondition(format!(
                "{what} {key} version {n} is already retired"
            )),
        }
    }
}

fn retire_in<T>(
    versions: &mut [Version<T>],
    n: u32,
    now: DateTime<Utc>,
) -> Result<u32, RetireError> {
    let target = if n == 0 {
        versions
            .iter()
            .rev()
            .find(|v| v.state == VersionState::Active)
            .map(|v| v.version)
            .ok_or(RetireError::NoActive)?
    } else {
        n
    };
    let v = versions
        .iter_mut()
        .find(|v| v.version == target)
        .ok_or(RetireError::Missing(target))?;
    if v.state == VersionState::Retired {
        return Err(RetireError::AlreadyRetired(target));
    }
    v.state = VersionState::Retired;
    v.updated_at = now;
    Ok(target)
}

// ---------------------------------------------------------------------------
// Export and import.

/// The document format's `api_version`.
pub const DOCUMENT_API_VERSION: &str = "kpi.catalog/v1";

/// A whole catalog as a document (YAML or JSON), every version included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    /// Always "kpi.catalog/v1".
    pub api_version: String,
    /// Calendars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<BusinessCalendar>,
    /// Indicators with their versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<Entry<IndicatorDef>>,
    /// Templates with their versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Entry<TemplateDef>>,
}

/// One indicator or template with its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry<T> {
    /// The key.
    pub key: String,
    /// The versions, oldest first.
    pub versions: Vec<VersionEntry<T>>,
}

/// One version in a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionEntry<T> {
    /// The version number.
    pub version: u32,
    /// Its state.
    pub state: VersionState,
    /// The definition.
    pub definition: T,
}

/// Document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl CatalogDocument {
    /// Parses a document; JSON is YAML too, so both formats parse either way.
    /// Enums are single-key maps (`linear: {worst: 3, best: 5}`) in both
    /// formats, the way JSON writes them, so YAML and JSON share one shape.
    pub fn parse(content: &str) -> Result<Self, Violations> {
        let de = serde_yaml_ng::Deserializer::from_str(content);
        let doc: CatalogDocument = serde_yaml_ng::with::singleton_map_recursive::deserialize(de)
            .map_err(|e| {
                Violations::one("content", format!("cannot parse the catalog document: {e}"))
            })?;
        if doc.api_version != DOCUMENT_API_VERSION {
            return Err(Violations::one(
                "content.api_version",
                format!(
                    "expected \"{DOCUMENT_API_VERSION}\", found \"{}\"",
                    doc.api_version
                ),
            ));
        }
        Ok(doc)
    }

    /// Renders the document.
    pub fn render(&self, format: DocumentFormat) -> Result<String, String> {
        match format {
            DocumentFormat::Yaml => {
                let mut out = Vec::new();
                let mut ser = serde_yaml_ng::Serializer::new(&mut out);
                serde_yaml_ng::with::singleton_map_recursive::serialize(self, &mut ser)
                    .map_err(|e| e.to_string())?;
                String::from_utf8(out).map_err(|e| e.to_string())
            }
            DocumentFormat::Json => serde_json::to_string_pretty(self).map_err(|e| e.to_string()),
        }
    }
}

fn entries<T: Clone>(map: &BTreeMap<String, Vec<Version<T>>>) -> Vec<Entry<T>> {
    map.iter()
        .map(|(key, versions)| Entry {
            key: key.clone(),
            versions: versions
                .iter()
                .map(|v| VersionEntry {
                    version: v.version,
                    state: v.state,
                    definition: v.def.clone(),
                })
                .collect(),
        })
        .collect()
}

impl Catalog {
    /// The whole catalog as a document.
    pub fn export(&self) -> CatalogDocument {
        CatalogDocument {
            api_version: DOCUMENT_API_VERSION.to_string(),
            calendars: self.calendars.values().cloned().collect(),
            indicators: entries(&self.indicators),
            templates: entries(&self.templates),
        }
    }

    /// Applies a document. Everything is validated first, on a copy; the
    /// catalog changes only when the whole document is valid. Entries that
    /// exist unchanged are left alone, so applying twice changes nothing.
    pub fn import(
        &mut self,
        doc: &CatalogDocument,
        now: DateTime<Utc>,
    ) -> Result<ImportSummary, CatalogError> {
        let mut next = self.clone();
        let mut summary = ImportSummary::default();
        let mut problems = Vec::new();
        for (i, cal) in doc.calendars.iter().enumerate() {
            let before = next.calendars.get(&cal.key).cloned();
            match next.upsert_calendar(cal.clone()) {
                Err(CatalogError::Invalid(v)) => {
                    problems.extend(v.0.into_iter().map(|v| FieldViolation {
                        field: v.field.replacen("calendar", &format!("calendars[{i}]"), 1),
                        ..v
                    }))
                }
                Err(other) => return Err(other),
                Ok(_) => summary.record(
                    before.is_none(),
                    before.as_ref() != Some(cal),
                    format!("calendar {}", cal.key),
                ),
            }
        }
        // Indicators first (all keys), so that templates and derived
        // indicators can refer to any indicator of the document.
        for (i, entry) in doc.indicators.iter().enumerate() {
            let path = format!("indicators[{i}]");
            if let Some(v) = check_key(&format!("{path}.key"), &entry.key) {
                problems.push(v);
                continue;
            }
            for (j, ve) in entry.versions.iter().enumerate() {
                let vpath = format!("{path}.versions[{j}]");
                let mut def = ve.definition.clone();
                def.normalize();
                if let Err(p) = next.import_version(
                    Kind::Indicator,
                    &entry.key,
                    ve.version,
                    ve.state,
                    Def::Indicator(def),
                    &vpath,
                    now,
                    &mut summary,
                ) {
                    problems.extend(p);
                }
            }
        }
        let defs: BTreeMap<String, &IndicatorDef> = next
            .current_indicators()
            .map(|(k, v)| (k.clone(), &v.def))
            .collect();
        let doc_paths: BTreeMap<&str, usize> = doc
            .indicators
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.as_str(), i))
            .collect();
        problems.extend(
            check_derived_graph(&defs, &|k| {
                doc_paths
                    .get(k)
                    .map_or(format!("(indicator {k})"), |i| format!("indicators[{i}]"))
            })
            .into_iter()
            .filter(|p| p.field.starts_with("indicators[")),
        );
        for (i, entry) in doc.templates.iter().enumerate() {
            let path = format!("templates[{i}]");
            if let Some(v) = check_key(&format!("{path}.key"), &entry.key) {
                problems.push(v);
                continue;
            }
            for (j, ve) in entry.versions.iter().enumerate() {
                let vpath = format!("{path}.versions[{j}]");
                let mut def = ve.definition.clone();
                def.normalize();
                if let Err(p) = next.import_version(
                    Kind::Template,
                    &entry.key,
                    ve.version,
                    ve.state,
                    Def::Template(def),
                    &vpath,
                    now,
                    &mut summary,
                ) {
                    problems.extend(p);
                }
            }
        }
        dedup(&mut problems);
        Violations::into_result(problems)?;
        *self = next;
        Ok(summary)
    }

    /// Imports one version: creates it, updates a draft, moves it along its
    /// lifecycle, or leaves it alone; records exactly one outcome.
    #[allow(clippy::too_many_arguments)]
    fn import_version(
        &mut self,
        kind: Kind,
        key: &str,
        n: u32,
        state: VersionState,
        def: Def,
        path: &str,
        now: DateTime<Utc>,
        summary: &mut ImportSummary,
    ) -> Result<(), Vec<FieldViolation>> {
        let label = format!("{} {key} v{n}", kind.as_str());
        let def_path = join_path(path, "definition");
        // Indicators are checked on their own here; references among derived
        // indicators are checked once every indicator of the document is in.
        let problems: Vec<FieldViolation> = match &def {
            Def::Indicator(d) => d.check().into_iter().map(|v| v.nested(&def_path)).collect(),
            Def::Template(d) => self.check_template(&def_path, d),
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        if let Def::Template(d) = &def {
            summary
                .warnings
                .extend(self.template_warnings(&def_path, d));
        }
        let fail =
            |field: &str, msg: String| Err(vec![FieldViolation::new(join_path(path, field), msg)]);
        let existing = self.version_of(kind, key, n);
        let created = existing.is_none();
        let next_n = self.next_version(kind, key);
        let mut changed = false;
        let from_state = match existing {
            None if n != next_n => {
                return fail(
                    "version",
                    format!("{label}: versions are numbered in order; the next is {next_n}"),
                );
            }
            None => {
                self.push_version(key, def.clone().without_pins(), now);
                VersionState::Draft
            }
            Some((old_state, old_def)) => {
                if old_def.without_pins() != def.clone().without_pins() {
                    if old_state != VersionState::Draft {
                        return fail(
                            "definition",
                            format!(
                                "{label} is {} and immutable; add version {next_n} instead",
                                old_state.as_str()
                            ),
                        );
                    }
                    self.replace_draft(key, n, def.clone().without_pins(), now);
                    changed = true;
                }
                old_state
            }
        };
        if from_state != state {
            self.transition(kind, key, n, from_state, state, &def, now)
                .map_err(|e| match e {
                    CatalogError::Invalid(v) => v
                        .0
                        .into_iter()
                        .map(|v| {
                            FieldViolation::new(join_path(path, "state"), format!("{label}: {v}"))
                        })
                        .collect(),
                    other => vec![FieldViolation::new(
                        join_path(path, "state"),
                        format!("{label}: {other}"),
                    )],
                })?;
            changed = true;
        }
        summary.record(created, changed, format!("{label} {}", state.as_str()));
        Ok(())
    }

    fn version_of(&self, kind: Kind, key: &str, n: u32) -> Option<(VersionState, Def)> {
        match kind {
            Kind::Indicator => self
                .indicators
                .get(key)?
                .iter()
                .find(|v| v.version == n)
                .map(|v| (v.state, Def::Indicator(v.def.clone()))),
            Kind::Template => self
                .templates
                .get(key)?
                .iter()
                .find(|v| v.version == n)
                .map(|v| (v.state, Def::Template(v.def.clone()))),
        }
    }

    fn next_version(&self, kind: Kind, key: &str) -> u32 {
        let last = match kind {
            Kind::Indicator => self
                .indicators
                .get(key)
                .and_then(|v| v.last())
                .map(|v| v.version),
            Kind::Template => self
                .templates
                .get(key)
                .and_then(|v| v.last())
                .map(|v| v.version),
        };
        last.map_or(1, |v| v + 1)
    }

    /// Moves a version from one state to another along the lifecycle.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &mut self,
        kind: Kind,
        key: &str,
        n: u32,
        from: VersionState,
        to: VersionState,
        def: &Def,
        now: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        match (from, to, kind, def) {
            (VersionState::Draft, VersionState::Active, Kind::Indicator, _) => {
                self.activate_indicator(key, n, now).map(|_| ())
            }
            (VersionState::Draft, VersionState::Active, Kind::Template, Def::Template(d)) => {
                self.activate_imported_template(key, n, d, now)
            }
            (
                VersionState::Draft | VersionState::Active,
                VersionState::Retired,
                Kind::Indicator,
                _,
            ) => self.retire_indicator(key, n, now).map(|_| ()),
            (
                VersionState::Draft | VersionState::Active,
                VersionState::Retired,
                Kind::Template,
                _,
            ) => self.retire_template(key, n, now).map(|_| ()),
            _ => Err(CatalogError::FailedPrecondition(format!(
                "cannot go from {} to {}",
                from.as_str(),
                to.as_str()
            ))),
        }
    }

    /// Activates an imported template version, keeping the document's pins
    /// and effective range (an export carries both, so round trips are exact).
    fn activate_imported_template(
        &mut self,
        key: &str,
        n: u32,
        def: &TemplateDef,
        now: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        if def.pinned_indicators.is_empty() {
            return self.activate_template(key, n, now).map(|_| ());
        }
        for (k, v) in &def.pinned_indicators {
            if self
                .indicator(k, *v)
                .map(|x| x.state == VersionState::Draft)
                .unwrap_or(true)
            {
                return Err(invalid(
                    "pinned_indicators",
                    format!("indicator {k} version {v} is missing or a draft"),
                ));
            }
        }
        let versions = self
            .templates
            .get_mut(key)
            .ok_or_else(|| CatalogError::NotFound(format!("template {key}")))?;
        let range = EffectiveRange {
            version: n,
            from: def.effective_from,
            until: def.effective_until,
        };
        for other in versions
            .iter()
            .filter(|v| v.state == VersionState::Active && v.version != n)
        {
            let o = EffectiveRange {
                version: other.version,
                from: other.def.effective_from,
                until: other.def.effective_until,
            };
            if plan_activation(range, &[o])
                .map(|c| !c.is_empty())
                .unwrap_or(true)
            {
                return Err(invalid(
                    "effective_from",
                    format!("effective range overlaps active version {}", other.version),
                ));
            }
        }
        if let Some(v) = versions.iter_mut().find(|v| v.version == n) {
            v.state = VersionState::Active;
            v.def.pinned_indicators = def.pinned_indicators.clone();
            v.updated_at = now;
        }
        self.dirty.insert(Row::Template(key.to_string(), n));
        Ok(())
    }

    fn push_version(&mut self, key: &str, def: Def, now: DateTime<Utc>) {
        match def {
            Def::Indicator(d) => {
                let vs = self.indicators.entry(key.to_string()).or_default();
                let n = vs.last().map_or(1, |v| v.version + 1);
                vs.push(Version::new(n, VersionState::Draft, d, now));
                self.dirty.insert(Row::Indicator(key.to_string(), n));
            }
            Def::Template(d) => {
                let vs = self.templates.entry(key.to_string()).or_default();
                let n = vs.last().map_or(1, |v| v.version + 1);
                vs.push(Version::new(n, VersionState::Draft, d, now));
                self.dirty.insert(Row::Template(key.to_string(), n));
            }
        }
    }

    fn replace_draft(&mut self, key: &str, n: u32, def: Def, now: DateTime<Utc>) {
        match def {
            Def::Indicator(d) => {
                if let Some(v) = self
                    .indicators
                    .get_mut(key)
                    .and_then(|vs| vs.iter_mut().find(|v| v.version == n))
                {
                    v.def = d;
                    v.updated_at = now;
                    self.dirty.insert(Row::Indicator(key.to_string(), n));
                }
            }
            Def::Template(d) => {
                if let Some(v) = self
                    .templates
                    .get_mut(key)
                    .and_then(|vs| vs.iter_mut().find(|v| v.version == n))
                {
                    v.def = d;
                    v.updated_at = now;
                    self.dirty.insert(Row::Template(key.to_string(), n));
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Indicator,
    Template,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Indicator => "indicator",
            Kind::Template => "template",
        }
    }
}

#[derive(Clone, PartialEq)]
enum Def {
    Indicator(IndicatorDef),
    Template(TemplateDef),
}

impl Def {
    /// The definition without output-only pins, for comparisons and drafts.
    fn without_pins(self) -> Def {
        match self {
            Def::Template(mut d) => {
                d.pinned_indicators.clear();
                Def::Template(d)
            }
            other => other,
        }
    }
}

impl ImportSummary {
    /// Records one entry's outcome: created, changed, or unchanged.
    fn record(&mut self, created: bool, changed: bool, what: String) {
        if created {
            self.created += 1;
            self.changes.push(format!("{what} (created)"));
        } else if changed {
            self.updated += 1;
            self.changes.push(format!("{what} (updated)"));
        } else {
            self.unchanged += 1;
        }
    }
}

fn dedup(problems: &mut Vec<FieldViolation>) {
    let mut seen = BTreeSet::new();
    problems.retain(|p| seen.insert((p.field.clone(), p.description.clone())));
}
