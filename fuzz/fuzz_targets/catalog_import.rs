//! Catalog import (`kpi_domain::catalog`), as `ImportCatalog` and
//! `kpictl catalog apply` feed it: any document either fails with field
//! violations or imports; importing it again changes nothing; the export,
//! rendered as YAML and as JSON, parses and imports into an empty catalog
//! giving the same catalog back.
#![no_main]

use chrono::{DateTime, TimeZone, Utc};
use kpi_domain::catalog::{Catalog, CatalogDocument, DocumentFormat};
use libfuzzer_sys::fuzz_target;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).single().expect("valid instant")
}

/// Renders `catalog`'s export in `format`, parses it, imports it into an
/// empty catalog and checks the export is unchanged.
fn round_trip(catalog: &Catalog, format: DocumentFormat) {
    let exported = catalog.export();
    let text = exported.render(format).expect("an export renders");
    let parsed = CatalogDocument::parse(&text)
        .unwrap_or_else(|e| panic!("rendered export does not parse: {e:?}\n{text}"));
    let mut fresh = Catalog::default();
    fresh
        .import(&parsed, now())
        .unwrap_or_else(|e| panic!("rendered export does not import: {e:?}\n{text}"));
    assert_eq!(fresh.export(), exported, "export changed across {format:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(content) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = CatalogDocument::parse(content) else {
        return;
    };
    let mut catalog = Catalog::default();
    if catalog.import(&doc, now()).is_err() {
        assert_eq!(catalog, Catalog::default(), "a refused import changed the catalog");
        return;
    }
    let again = catalog.import(&doc, now()).expect("a document that imported imports again");
    assert_eq!(
        (again.created, again.updated),
        (0, 0),
        "importing the same document twice changed something: {:?}",
        again.changes
    );
    round_trip(&catalog, DocumentFormat::Yaml);
    round_trip(&catalog, DocumentFormat::Json);
});
