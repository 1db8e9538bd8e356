//! The starter kit: the indicator library of DOMAIN.md §4 and the four
//! starter templates of §6, as one catalog document installed per tenant.

use crate::catalog::CatalogDocument;
use crate::error::Violations;

/// The starter kit document, as shipped.
pub const STARTER_KIT_YAML: &str = include_str!("starter_kit.yaml");

/// The starter kit, parsed.
pub fn starter_kit() -> Result<CatalogDocument, Violations> {
    CatalogDocument::parse(STARTER_KIT_YAML)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::catalog::{Catalog, DocumentFormat, ImportSummary, VersionState};
    use crate::error::FieldViolation;

    /// Every indicator of DOMAIN.md §4.
    const DOMAIN_INDICATORS: &[&str] = &[
        "first_response_time",
        "first_response_sla_rate",
        "resolution_time",
        "tickets_handled",
        "aht",
        "fcr",
        "one_touch_rate",
        "reopen_rate",
        "csat_avg",
        "csat_pct",
        "nps",
        "ces",
        "complaint_rate",
        "escalation_rate",
        "vip_csat",
        "conversion_rate",
        "bad_review_interception",
        "valid_sessions",
        "qa_score",
        "compliance_score",
        "major_violations",
        "first_visit_fix_rate",
        "fault_response_time",
        "process_compliance",
        "knowledge_score",
    ];

    /// The starter templates of DOMAIN.md §6 and the indicators their vetoes read.
    const TEMPLATE_VETOES: &[(&str, &[&str])] = &[
        ("ecommerce", &["false_promises"]),
        ("finance", &["major_violations", "data_leaks"]),
        ("manufacturing", &["safety_incidents"]),
        ("ticket_handling", &[]),
    ];

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap()
    }

    fn kit() -> CatalogDocument {
        match starter_kit() {
            Ok(doc) => doc,
            Err(v) => panic!("the starter kit does not parse: {v}"),
        }
    }

    fn install(catalog: &mut Catalog, doc: &CatalogDocument) -> ImportSummary {
        match catalog.import(doc, now()) {
            Ok(summary) => summary,
            Err(err) => {
                if let crate::catalog::CatalogError::Invalid(v) = &err {
                    for p in &v.0 {
                        eprintln!("violation: {p}");
                    }
                }
                panic!("the starter kit does not import: {err}");
            }
        }
    }

    fn installed() -> Catalog {
        let mut catalog = Catalog::default();
        install(&mut catalog, &kit());
        catalog
    }

    #[test]
    fn the_kit_parses() {
        let doc = kit();
        assert!(
            doc.calendars.is_empty(),
            "the install call adds the tenant's calendar"
        );
        assert!(!doc.indicators.is_empty());
        assert_eq!(doc.templates.len(), 4);
    }

    #[test]
    fn the_kit_imports_every_entry_as_active_version_1() {
        let doc = kit();
        let mut catalog = Catalog::default();
        let summary = install(&mut catalog, &doc);
        assert_eq!(
            summary.created as usize,
            doc.indicators.len() + doc.templates.len(),
            "{:?}",
            summary.changes
        );
        assert_eq!(summary.updated, 0);
        for entry in &doc.indicators {
            let versions = &catalog.indicators[&entry.key];
            assert_eq!(versions.len(), 1, "indicator {}", entry.key);
            assert_eq!(
                (versions[0].version, versions[0].state),
                (1, VersionState::Active),
                "indicator {}",
                entry.key
            );
        }
        for entry in &doc.templates {
            let versions = &catalog.templates[&entry.key];
            assert_eq!(versions.len(), 1, "template {}", entry.key);
            assert_eq!(
                (versions[0].version, versions[0].state),
                (1, VersionState::Active),
                "template {}",
                entry.key
            );
        }
    }

    #[test]
    fn only_the_known_category_weight_warnings_come_back() {
        // §6 weights are kept as published; two templates fall outside the
        // advisory bands (warn, never refuse).
        let doc = kit();
        let index = |key: &str| doc.templates.iter().position(|t| t.key == key).unwrap();
        let items = |key: &str| format!("templates[{}].versions[0].definition.items", index(key));
        let expected = vec![
            FieldViolation::new(
                items("finance"),
                "efficiency indicators weigh 20 %, outside the advised 25–35 %",
            ),
            FieldViolation::new(
                items("finance"),
                "behavior indicators weigh 30 %, outside the advised 10–20 %",
            ),
            FieldViolation::new(
                items("ticket_handling"),
                "efficiency indicators weigh 55 %, outside the advised 25–35 %",
            ),
            FieldViolation::new(
                items("ticket_handling"),
                "outcome indicators weigh 30 %, outside the advised 35–45 %",
            ),
            FieldViolation::new(
                items("ticket_handling"),
                "capability indicators weigh 5 %, outside the advised 10–15 %",
            ),
        ];
        let summary = install(&mut Catalog::default(), &doc);
        assert_eq!(summary.warnings, expected);
    }

    #[test]
    fn importing_twice_changes_nothing() {
        let doc = kit();
        let mut catalog = installed();
        let before = catalog.clone();
        let again = install(&mut catalog, &doc);
        assert_eq!(
            (again.created, again.updated),
            (0, 0),
            "{:?}",
            again.changes
        );
        assert_eq!(
            again.unchanged as usize,
            doc.indicators.len() + doc.templates.len()
        );
        assert_eq!(catalog.export(), before.export());
    }

    #[test]
    fn every_template_weighs_exactly_100() {
        for entry in kit().templates {
            for v in &entry.versions {
                let sum: f64 = v.definition.items.iter().map(|i| i.weight).sum();
                assert_eq!(sum, 100.0, "template {} v{}", entry.key, v.version);
            }
        }
    }

    #[test]
    fn every_domain_indicator_exists_with_names_and_defaults() {
        let doc = kit();
        let keys: BTreeSet<&str> = doc.indicators.iter().map(|e| e.key.as_str()).collect();
        for key in DOMAIN_INDICATORS {
            assert!(keys.contains(key), "missing indicator {key}");
        }
        for entry in &doc.indicators {
            let def = &entry.versions[0].definition;
            for lang in ["en", "zh"] {
                assert!(
                    def.display_names
                        .get(lang)
                        .is_some_and(|n| !n.trim().is_empty()),
                    "indicator {} has no {lang} name",
                    entry.key
                );
            }
            assert!(
                !def.description.is_empty(),
                "indicator {} has no description",
                entry.key
            );
            assert!(!def.unit.is_empty(), "indicator {} has no unit", entry.key);
            assert!(
                def.default_target.is_some(),
                "indicator {} has no default target",
                entry.key
            );
            assert!(
                def.default_scoring.is_some(),
                "indicator {} has no default scoring",
                entry.key
            );
        }
        for entry in &doc.templates {
            let def = &entry.versions[0].definition;
            for lang in ["en", "zh"] {
                assert!(
                    def.display_names
                        .get(lang)
                        .is_some_and(|n| !n.trim().is_empty()),
                    "template {} has no {lang} name",
                    entry.key
                );
            }
            assert!(
                def.pinned_indicators.is_empty(),
                "template {}: activation pins indicators",
                entry.key
            );
        }
    }

    #[test]
    fn every_template_resolves_with_its_veto_indicators_pinned() {
        let catalog = installed();
        let date = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        for (key, vetoes) in TEMPLATE_VETOES {
            let resolved = match catalog.resolve(Some(key), 0, "tier1", "t1", "veteran", date) {
                Ok(r) => r,
                Err(err) => panic!("template {key} does not resolve: {err}"),
            };
            assert_eq!(resolved.key, *key);
            assert_eq!(resolved.template.version, 1);
            let pinned = &resolved.template.def.pinned_indicators;
            for item in &resolved.template.def.items {
                assert_eq!(
                    pinned.get(&item.indicator),
                    Some(&1),
                    "template {key} item {}",
                    item.indicator
                );
            }
            for veto in *vetoes {
                assert_eq!(
                    pinned.get(*veto),
                    Some(&1),
                    "template {key} veto indicator {veto}"
                );
                assert!(
                    resolved.indicators.iter().any(|(k, _)| k == veto),
                    "template {key} veto indicator {veto}"
                );
            }
        }
        // With no template named, the general one is the default.
        let default = catalog
            .resolve(None, 0, "tier1", "t1", "veteran", date)
            .unwrap();
        assert_eq!(default.key, "ticket_handling");
    }

    #[test]
    fn export_parse_import_export_round_trips() {
        let first = installed().export();
        let yaml = first.render(DocumentFormat::Yaml).unwrap();
        let parsed = match CatalogDocument::parse(&yaml) {
            Ok(doc) => doc,
            Err(v) => panic!("the export does not parse: {v}\n{yaml}"),
        };
        assert_eq!(parsed, first);
        let mut fresh = Catalog::default();
        install(&mut fresh, &parsed);
        let second = fresh.export();
        assert_eq!(second, first);
        assert_eq!(second.render(DocumentFormat::Yaml).unwrap(), yaml);
    }
}
