//! The indicator-catalog against real servers on ephemeral ports, on SQLite
//! and on PostgreSQL: every scenario runs on both.

use std::collections::BTreeSet;

use indicator_catalog::App;
use kpi_proto::catalog as pb;
use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
use kpi_proto::common as cpb;
use kpi_runtime::ServiceKind;
use kpi_runtime::status::field_violations;
use kpi_testkit::{DbKind, RunningServer, TestDb};
use tonic::Code;
use tonic::transport::Channel;

type Client = CatalogServiceClient<Channel>;

const PARENT: &str = "tenants/acme";

struct Harness {
    client: Client,
    server: RunningServer,
    _db: TestDb,
}

async fn start(kind: DbKind) -> Harness {
    let db = TestDb::new(kind).await.expect("test database");
    let app = App::build(&kpi_testkit::settings(ServiceKind::Catalog, &db.url))
        .await
        .expect("app");
    let addr = app.local_addr().expect("addr");
    let server = RunningServer::spawn(addr, |shutdown| app.run_until_stopped(shutdown));
    let client = CatalogServiceClient::connect(server.endpoint())
        .await
        .expect("connect");
    Harness {
        client,
        server,
        _db: db,
    }
}

/// Runs a scenario once on SQLite and once on PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(kpi_testkit::DbKind::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(kpi_testkit::DbKind::Postgres).await
            }
        }
    )*};
}

on_both_databases!(
    indicators_are_created_versioned_activated_and_retired,
    templates_are_versioned_activated_and_resolved,
    every_validation_error_names_its_field,
    the_starter_kit_installs_twice_without_duplicates,
    export_then_import_into_a_fresh_tenant_round_trips,
    concurrent_writers_lose_nothing,
    validate_only_and_dry_run_write_nothing,
    lists_page_through_everything_once,
);

fn count(fact_type: cpb::FactType, filter: &str) -> cpb::Measure {
    cpb::Measure {
        fact_type: fact_type as i32,
        aggregation: cpb::Aggregation::Count as i32,
        filter: Some(cpb::Filter {
            expression: filter.to_string(),
            condition: None,
        }),
        ..Default::default()
    }
}

/// "FCR, 3-day window, chat only": the indicator a manager defines by hand.
fn fcr_chat_3d() -> pb::Indicator {
    pb::Indicator {
        key: "fcr_3d_chat".into(),
        display_names: [
            ("en".to_string(), "FCR, 3-day window, chat".to_string()),
            ("zh".to_string(), "首次解决率（3天，在线）".to_string()),
        ]
        .into(),
        kind: pb::IndicatorKind::Ratio as i32,
        numerator: Some(count(
            cpb::FactType::Ticket,
            r#"resolved && channel == "chat" && !(first_reopen_seconds <= 259200) && !(next_contact_gap_seconds <= 259200)"#,
        )),
        denominator: Some(count(
            cpb::FactType::Ticket,
            r#"resolved && channel == "chat""#,
        )),
        scale: 100.0,
        unit: "%".into(),
        direction: pb::Direction::HigherIsBetter as i32,
        category: pb::Category::Efficiency as i32,
        attribution: cpb::Attribution::ResolvingAgent as i32,
        min_sample: 20,
        default_target: Some(80.0),
        default_scoring: Some(pb::ScoringRule {
            rule: Some(pb::scoring_rule::Rule::Linear(pb::LinearRule {
                worst: 50.0,
                best: 90.0,
            })),
        }),
        ..Default::default()
    }
}

fn simple_mean(
    key: &str,
    fact_type: cpb::FactType,
    field: &str,
    filter: &str,
    category: pb::Category,
) -> pb::Indicator {
    pb::Indicator {
        key: key.into(),
        kind: pb::IndicatorKind::Simple as i32,
        measure: Some(cpb::Measure {
            fact_type: fact_type as i32,
            aggregation: cpb::Aggregation::Mean as i32,
            field: field.into(),
            filter: (!filter.is_empty()).then(|| cpb::Filter {
                expression: filter.into(),
                condition: None,
            }),
            ..Default::default()
        }),
        unit: "score".into(),
        direction: pb::Direction::HigherIsBetter as i32,
        category: category as i32,
        default_scoring: Some(pb::ScoringRule {
            rule: Some(pb::scoring_rule::Rule::Linear(pb::LinearRule {
                worst: 3.0,
                best: 5.0,
            })),
        }),
        ..Default::default()
    }
}

fn name(collection: &str, key: &str) -> String {
    format!("{PARENT}/{collection}/{key}")
}

async fn create(client: &mut Client, indicator: pb::Indicator, activate: bool) -> pb::Indicator {
    client
        .create_indicator(pb::CreateIndicatorRequest {
            parent: PARENT.into(),
            indicator: Some(indicator),
            activate,
            validate_only: false,
        })
        .await
        .expect("create indicator")
        .into_inner()
        .indicator
        .expect("indicator")
}

fn item(indicator: &str, weight: f64) -> pb::TemplateItem {
    pb::TemplateItem {
        indicator: indicator.into(),
        weight,
        ..Default::default()
    }
}

fn template(key: &str, items: Vec<pb::TemplateItem>, effective_from: &str) -> pb::Template {
    pb::Template {
        key: key.into(),
        items,
        effective_from: effective_from.into(),
        ..Default::default()
    }
}

/// The (field, description) pairs of an INVALID_ARGUMENT status.
fn violations_of(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
}

fn assert_violation(status: &tonic::Status, field: &str, contains: &str) {
    let v = violations_of(status);
    assert!(
        v.iter().any(|(f, d)| f == field && d.contains(contains)),
        "expected a violation of {field} containing {contains:?}, got {v:?}"
    );
}

async fn indicators_are_created_versioned_activated_and_retired(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    let created = create(c, fcr_chat_3d(), false).await;
    assert_eq!(
        (created.version, created.state),
        (1, pb::VersionState::Draft as i32)
    );
    assert_eq!(created.name, "tenants/acme/indicators/fcr_3d_chat");
    // The filter reads back in canonical form, with its condition tree.
    let num = created.numerator.clone().unwrap().filter.unwrap();
    assert_eq!(
        num.expression,
        r#"resolved && channel == "chat" && !(first_reopen_seconds <= 259200) && !(next_contact_gap_seconds <= 259200)"#
    );
    assert!(num.condition.is_some());

    // A draft is edited in place.
    let mut change = pb::Indicator {
        name: created.name.clone(),
        min_sample: 30,
        ..Default::default()
    };
    let updated = c
        .update_indicator(pb::UpdateIndicatorRequest {
            indicator: Some(change.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["min_sample".into()],
            }),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.new_version);
    let updated = updated.indicator.unwrap();
    assert_eq!(
        (updated.version, updated.min_sample, updated.unit.as_str()),
        (1, 30, "%")
    );

    let active = c
        .activate_indicator(pb::ActivateIndicatorRequest {
            name: created.name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .indicator
        .unwrap();
    assert_eq!(active.state, pb::VersionState::Active as i32);

    // An active version is immutable: a change makes version 2, a draft.
    change.min_sample = 40;
    let v2 = c
        .update_indicator(pb::UpdateIndicatorRequest {
            indicator: Some(change),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["min_sample".into()],
            }),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v2.new_version);
    let v2 = v2.indicator.unwrap();
    assert_eq!(
        (v2.version, v2.state, v2.min_sample),
        (2, pb::VersionState::Draft as i32, 40)
    );
    let v1 = c
        .get_indicator(pb::GetIndicatorRequest {
            name: created.name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .indicator
        .unwrap();
    assert_eq!(v1.min_sample, 30, "version 1 did not change");
    // The current version is still the active one.
    let current = c
        .get_indicator(pb::GetIndicatorRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .indicator
        .unwrap();
    assert_eq!(current.version, 1);

    // Activating version 2 retires version 1.
    c.activate_indicator(pb::ActivateIndicatorRequest {
        name: created.name.clone(),
        version: 2,
    })
    .await
    .unwrap();
    let versions = c
        .list_indicator_versions(pb::ListIndicatorVersionsRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .indicators;
    let states: Vec<(i32, i32)> = versions.iter().map(|v| (v.version, v.state)).collect();
    assert_eq!(
        states,
        vec![
            (2, pb::VersionState::Active as i32),
            (1, pb::VersionState::Retired as i32)
        ]
    );

    // A retired version cannot come back.
    let err = c
        .activate_indicator(pb::ActivateIndicatorRequest {
            name: created.name.clone(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Retiring the active version leaves none active; lists hide it unless asked.
    let retired = c
        .retire_indicator(pb::RetireIndicatorRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .indicator
        .unwrap();
    assert_eq!(
        (retired.version, retired.state),
        (2, pb::VersionState::Retired as i32)
    );
    let listed = c
        .list_indicators(pb::ListIndicatorsRequest {
            parent: PARENT.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .indicators;
    assert!(listed.is_empty());
    let listed = c
        .list_indicators(pb::ListIndicatorsRequest {
            parent: PARENT.into(),
            show_retired: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .indicators;
    assert_eq!(listed.len(), 1);

    // Creating it again is a conflict; an unknown one is not found.
    let err = c
        .create_indicator(pb::CreateIndicatorRequest {
            parent: PARENT.into(),
            indicator: Some(fcr_chat_3d()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = c
        .get_indicator(pb::GetIndicatorRequest {
            name: name("indicators", "nope"),
            version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.server.stop().await.unwrap();
}

async fn templates_are_versioned_activated_and_resolved(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    create(c, fcr_chat_3d(), true).await;
    create(
        c,
        simple_mean(
            "csat_avg",
            cpb::FactType::Survey,
            "score",
            r#"kind == "csat""#,
            pb::Category::Outcome,
        ),
        true,
    )
    .await;
    let t = template(
        "chat_team",
        vec![item("fcr_3d_chat", 40.0), item("csat_avg", 60.0)],
        "2026-01-01",
    );
    let created = c
        .create_template(pb::CreateTemplateRequest {
            parent: PARENT.into(),
            template: Some(t),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    let v1 = created.template.unwrap();
    assert_eq!((v1.version, v1.state), (1, pb::VersionState::Draft as i32));
    // Efficiency 40 % and outcome 60 % are outside the advised bands: warnings, not errors.
    let warned: BTreeSet<&str> = created.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(warned, BTreeSet::from(["template.items"]));
    assert_eq!(created.warnings.len(), 2, "{:?}", created.warnings);

    let activated = c
        .activate_template(pb::ActivateTemplateRequest {
            name: v1.name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let v1 = activated.template.unwrap();
    assert_eq!(v1.state, pb::VersionState::Active as i32);
    assert_eq!(
        v1.pinned_indicators,
        [("csat_avg".to_string(), 1), ("fcr_3d_chat".to_string(), 1)].into()
    );

    // Changing an active template makes version 2, effective from November.
    let change = pb::Template {
        name: v1.name.clone(),
        items: vec![item("fcr_3d_chat", 50.0), item("csat_avg", 50.0)],
        effective_from: "2026-11-01".into(),
        ..Default::default()
    };
    let v2 = c
        .update_template(pb::UpdateTemplateRequest {
            template: Some(change),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["items".into(), "effective_from".into()],
            }),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v2.new_version);
    let activated = c
        .activate_template(pb::ActivateTemplateRequest {
            name: v1.name.clone(),
            version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        activated.closed_versions,
        vec![1],
        "version 1 now ends where version 2 starts"
    );
    let v1_now = c
        .get_template(pb::GetTemplateRequest {
            name: v1.name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    assert_eq!(
        (v1_now.state, v1_now.effective_until.as_str()),
        (pb::VersionState::Active as i32, "2026-11-01")
    );
    assert_eq!(
        v1_now.items, v1.items,
        "an active version's items never change"
    );

    // October resolves to version 1, November to version 2.
    let resolve = |date: &str| pb::ResolveTemplateRequest {
        parent: PARENT.into(),
        role: "tier1".into(),
        team: "chat".into(),
        cohort: "veteran".into(),
        date: date.into(),
        ..Default::default()
    };
    let oct = c
        .resolve_template(resolve("2026-10-15"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(oct.template.unwrap().version, 1);
    let nov = c
        .resolve_template(resolve("2026-11-01"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(nov.template.unwrap().version, 2);
    let keys: Vec<String> = nov.indicators.iter().map(|i| i.key.clone()).collect();
    assert_eq!(keys, vec!["csat_avg", "fcr_3d_chat"]);
    let err = c.resolve_template(resolve("2025-12-31")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Retiring version 2 makes November fall back to nothing (v1 ended).
    c.retire_template(pb::RetireTemplateRequest {
        name: v1.name.clone(),
        version: 2,
    })
    .await
    .unwrap();
    let err = c.resolve_template(resolve("2026-11-15")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    h.server.stop().await.unwrap();
}

async fn every_validation_error_names_its_field(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    let attempt = |indicator: pb::Indicator| pb::CreateIndicatorRequest {
        parent: PARENT.into(),
        indicator: Some(indicator),
        activate: true,
        validate_only: false,
    };

    // Unknown fact field.
    let mut i = simple_mean(
        "x",
        cpb::FactType::Ticket,
        "handle_secs",
        "",
        pb::Category::Efficiency,
    );
    let err = c.create_indicator(attempt(i.clone())).await.unwrap_err();
    assert_violation(
        &err,
        "indicator.measure.field",
        "unknown field \"handle_secs\"",
    );
    // An aggregation that does not fit the field's type.
    i.measure.as_mut().unwrap().field = "channel".into();
    let err = c.create_indicator(attempt(i.clone())).await.unwrap_err();
    assert_violation(
        &err,
        "indicator.measure.field",
        "mean does not fit an enum field",
    );
    // An unparsable filter.
    i.measure.as_mut().unwrap().field = "handle_seconds".into();
    i.measure.as_mut().unwrap().filter = Some(cpb::Filter {
        expression: "channel == ".into(),
        condition: None,
    });
    let err = c.create_indicator(attempt(i.clone())).await.unwrap_err();
    assert_violation(&err, "indicator.measure.filter", "cannot parse filter");
    // A filter naming an unknown value of an enum field.
    i.measure.as_mut().unwrap().filter = Some(cpb::Filter {
        expression: r#"channel == "fax""#.into(),
        condition: None,
    });
    let err = c.create_indicator(attempt(i.clone())).await.unwrap_err();
    assert_violation(&err, "indicator.measure.filter", "fax");
    // Missing enums and a bad parent.
    let err = c
        .create_indicator(pb::CreateIndicatorRequest {
            parent: "acme".into(),
            indicator: Some(pb::Indicator::default()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&err, "parent", "");
    let err = c
        .create_indicator(attempt(pb::Indicator {
            key: "y".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    let fields: BTreeSet<String> = violations_of(&err).into_iter().map(|(f, _)| f).collect();
    assert!(
        fields.is_superset(&BTreeSet::from([
            "indicator.kind".to_string(),
            "indicator.direction".to_string(),
            "indicator.category".to_string()
        ])),
        "{fields:?}"
    );

    // A cycle among derived indicators.
    create(
        c,
        simple_mean(
            "base",
            cpb::FactType::Survey,
            "score",
            "",
            pb::Category::Outcome,
        ),
        true,
    )
    .await;
    let derived = |key: &str, formula: &str| pb::Indicator {
        key: key.into(),
        kind: pb::IndicatorKind::Derived as i32,
        formula: formula.into(),
        unit: "points".into(),
        direction: pb::Direction::HigherIsBetter as i32,
        category: pb::Category::Outcome as i32,
        ..Default::default()
    };
    create(c, derived("double", "base * 2"), true).await;
    let err = c
        .create_indicator(attempt(derived("ghost", "missing + 1")))
        .await
        .unwrap_err();
    assert_violation(&err, "indicator.formula", "unknown indicator \"missing\"");
    let to_cycle = pb::UpdateIndicatorRequest {
        indicator: Some(pb::Indicator {
            name: name("indicators", "base"),
            ..derived("base", "double / 2")
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["kind".into(), "measure".into(), "formula".into()],
        }),
        validate_only: false,
    };
    let err = c.update_indicator(to_cycle).await.unwrap_err();
    assert_violation(&err, "indicator.formula", "cycle: base → double → base");

    // Weights not summing to 100, and an unknown indicator in a template.
    let t = template(
        "t",
        vec![item("base", 40.0), item("nope", 55.0)],
        "2026-01-01",
    );
    let err = c
        .create_template(pb::CreateTemplateRequest {
            parent: PARENT.into(),
            template: Some(t),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "template.items", "weights sum to 95, not 100");
    assert_violation(
        &err,
        "template.items[1].indicator",
        "unknown indicator \"nope\"",
    );
    let mut bad_veto = template("t", vec![item("base", 100.0)], "2026-01-01");
    bad_veto.vetoes.push(pb::VetoRule {
        key: "leak".into(),
        condition: "data_leaks >=".into(),
        ..Default::default()
    });
    let err = c
        .create_template(pb::CreateTemplateRequest {
            parent: PARENT.into(),
            template: Some(bad_veto),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_violation(
        &err,
        "template.vetoes[0].condition",
        "cannot parse condition",
    );
    let err = c
        .create_template(pb::CreateTemplateRequest {
            parent: PARENT.into(),
            template: Some(template("t", vec![item("base", 100.0)], "01/10/2026")),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "template.effective_from", "not a date");

    // Overlapping effective ranges.
    let created = c
        .create_template(pb::CreateTemplateRequest {
            parent: PARENT.into(),
            template: Some(template("t", vec![item("base", 100.0)], "2026-01-01")),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    c.activate_template(pb::ActivateTemplateRequest {
        name: created.name.clone(),
        version: 1,
    })
    .await
    .unwrap();
    let seasonal = pb::Template {
        name: created.name.clone(),
        effective_from: "2026-11-01".into(),
        effective_until: "2026-12-01".into(),
        ..Default::default()
    };
    c.update_template(pb::UpdateTemplateRequest {
        template: Some(seasonal),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["effective_from".into(), "effective_until".into()],
        }),
        validate_only: false,
    })
    .await
    .unwrap();
    let err = c
        .activate_template(pb::ActivateTemplateRequest {
            name: created.name.clone(),
            version: 2,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "template.effective_from", "overlaps active version 1");

    // A bad update mask path, and a bad calendar.
    let err = c
        .update_template(pb::UpdateTemplateRequest {
            template: Some(pb::Template {
                name: created.name.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["weights".into()],
            }),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "update_mask.paths[0]", "weights");
    let cal = pb::BusinessCalendar {
        key: "default".into(),
        time_zone: "Mars/Olympus".into(),
        weekly_hours: vec![pb::WeeklyHours {
            day_of_week: 8,
            open: "09:00".into(),
            close: "18:00".into(),
        }],
        ..Default::default()
    };
    let err = c
        .upsert_calendar(pb::UpsertCalendarRequest {
            parent: PARENT.into(),
            calendar: Some(cal),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "calendar.time_zone", "");
    assert_violation(&err, "calendar.weekly_hours[0].day_of_week", "");
    h.server.stop().await.unwrap();
}

async fn install(c: &mut Client, parent: &str) -> pb::ImportSummary {
    c.install_starter_kit(pb::InstallStarterKitRequest {
        parent: parent.into(),
        time_zone: "Asia/Shanghai".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .summary
    .unwrap()
}

async fn all_indicators(c: &mut Client, parent: &str) -> Vec<pb::Indicator> {
    c.list_indicators(pb::ListIndicatorsRequest {
        parent: parent.into(),
        page_size: 500,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .indicators
}

async fn the_starter_kit_installs_twice_without_duplicates(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    let first = install(c, PARENT).await;
    assert!(first.created >= 30, "{first:?}");
    assert_eq!(first.updated, 0);
    let indicators = all_indicators(c, PARENT).await;
    let templates = c
        .list_templates(pb::ListTemplatesRequest {
            parent: PARENT.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .templates;
    let second = install(c, PARENT).await;
    assert_eq!((second.created, second.updated), (0, 0), "{second:?}");
    assert_eq!(
        second.unchanged,
        first.created - 1,
        "every entry but the calendar is reported unchanged"
    );
    assert_eq!(all_indicators(c, PARENT).await, indicators);
    let keys: BTreeSet<String> = indicators.iter().map(|i| i.key.clone()).collect();
    for key in [
        "first_response_time",
        "fcr",
        "csat_avg",
        "nps",
        "major_violations",
        "knowledge_score",
        "first_visit_fix_rate",
    ] {
        assert!(keys.contains(key), "{key} missing");
    }
    let tkeys: Vec<String> = templates.iter().map(|t| t.key.clone()).collect();
    assert_eq!(
        tkeys,
        vec!["ecommerce", "finance", "manufacturing", "ticket_handling"]
    );
    assert!(
        templates
            .iter()
            .all(|t| t.state == pb::VersionState::Active as i32 && t.version == 1)
    );
    let cal = c
        .get_calendar(pb::GetCalendarRequest {
            name: name("calendars", "default"),
        })
        .await
        .unwrap()
        .into_inner()
        .calendar
        .unwrap();
    assert_eq!(cal.time_zone, "Asia/Shanghai");
    // The finance template resolves with its veto indicator pinned.
    let finance = c
        .resolve_template(pb::ResolveTemplateRequest {
            parent: PARENT.into(),
            template: "finance".into(),
            date: "2026-10-01".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        finance
            .indicators
            .iter()
            .any(|i| i.key == "major_violations")
    );
    h.server.stop().await.unwrap();
}

async fn export_then_import_into_a_fresh_tenant_round_trips(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    install(c, PARENT).await;
    // Some history beyond the kit: a custom indicator with two versions and a draft template.
    let fcr = create(c, fcr_chat_3d(), true).await;
    c.update_indicator(pb::UpdateIndicatorRequest {
        indicator: Some(pb::Indicator {
            name: fcr.name.clone(),
            min_sample: 50,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["min_sample".into()],
        }),
        validate_only: false,
    })
    .await
    .unwrap();
    c.create_template(pb::CreateTemplateRequest {
        parent: PARENT.into(),
        template: Some(template(
            "chat",
            vec![item("fcr_3d_chat", 50.0), item("csat_avg", 50.0)],
            "2026-12-01",
        )),
        validate_only: false,
    })
    .await
    .unwrap();
    for format in [pb::CatalogFormat::Yaml, pb::CatalogFormat::Json] {
        let exported = c
            .export_catalog(pb::ExportCatalogRequest {
                parent: PARENT.into(),
                format: format as i32,
            })
            .await
            .unwrap()
            .into_inner()
            .content;
        let fresh = format!(
            "tenants/fresh-{}",
            format
                .as_str_name()
                .to_lowercase()
                .replace("catalog_format_", "")
        );
        let summary = c
            .import_catalog(pb::ImportCatalogRequest {
                parent: fresh.clone(),
                content: exported.clone(),
                format: format as i32,
                dry_run: false,
            })
            .await
            .unwrap()
            .into_inner()
            .summary
            .unwrap();
        assert_eq!(summary.updated, 0, "{summary:?}");
        let again = c
            .export_catalog(pb::ExportCatalogRequest {
                parent: fresh.clone(),
                format: format as i32,
            })
            .await
            .unwrap()
            .into_inner()
            .content;
        assert_eq!(again, exported, "{format:?} round trip");
        // Applying the same document again changes nothing.
        let second = c
            .import_catalog(pb::ImportCatalogRequest {
                parent: fresh.clone(),
                content: exported,
                format: format as i32,
                dry_run: false,
            })
            .await
            .unwrap()
            .into_inner()
            .summary
            .unwrap();
        assert_eq!((second.created, second.updated), (0, 0), "{second:?}");
    }
    // An edited active version is refused with its path; nothing is written.
    let yaml = c
        .export_catalog(pb::ExportCatalogRequest {
            parent: PARENT.into(),
            format: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .content;
    let edited = yaml.replacen("min_sample: 20", "min_sample: 21", 1);
    assert_ne!(edited, yaml);
    let err = c
        .import_catalog(pb::ImportCatalogRequest {
            parent: PARENT.into(),
            content: edited,
            format: 0,
            dry_run: false,
        })
        .await
        .unwrap_err();
    let v = violations_of(&err);
    assert!(
        v.iter()
            .any(|(f, d)| f.ends_with(".definition") && d.contains("immutable")),
        "{v:?}"
    );
    let err = c
        .import_catalog(pb::ImportCatalogRequest {
            parent: PARENT.into(),
            content: "api_version: kpi.catalog/v1\nindicators: [{key: x}]".into(),
            format: 0,
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_violation(&err, "content", "cannot parse");
    h.server.stop().await.unwrap();
}

async fn concurrent_writers_lose_nothing(kind: DbKind) {
    let h = start(kind).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut c = h.client.clone();
        tasks.push(tokio::spawn(async move {
            let mut indicator = fcr_chat_3d();
            indicator.key = format!("fcr_{i}");
            c.create_indicator(pb::CreateIndicatorRequest {
                parent: PARENT.into(),
                indicator: Some(indicator),
                activate: true,
                validate_only: false,
            })
            .await
            .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut c = h.client.clone();
    assert_eq!(all_indicators(&mut c, PARENT).await.len(), 12);
    h.server.stop().await.unwrap();
}

async fn validate_only_and_dry_run_write_nothing(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    let checked = c
        .create_indicator(pb::CreateIndicatorRequest {
            parent: PARENT.into(),
            indicator: Some(fcr_chat_3d()),
            activate: false,
            validate_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.indicator.unwrap().version, 1);
    assert!(all_indicators(c, PARENT).await.is_empty());
    let kit = kpi_domain::starter::STARTER_KIT_YAML.to_string();
    let summary = c
        .import_catalog(pb::ImportCatalogRequest {
            parent: PARENT.into(),
            content: kit,
            format: 0,
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert!(summary.created > 30);
    assert!(all_indicators(c, PARENT).await.is_empty());
    h.server.stop().await.unwrap();
}

async fn lists_page_through_everything_once(kind: DbKind) {
    let mut h = start(kind).await;
    let c = &mut h.client;
    install(c, PARENT).await;
    let everything = all_indicators(c, PARENT).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_indicators(pb::ListIndicatorsRequest {
                parent: PARENT.into(),
                page_size: 7,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.indicators.len() <= 7);
        seen.extend(page.indicators.into_iter().map(|i| i.key));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        seen,
        everything.iter().map(|i| i.key.clone()).collect::<Vec<_>>()
    );
    let err = c
        .list_indicators(pb::ListIndicatorsRequest {
            parent: PARENT.into(),
            page_token: "garbage!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_violation(&err, "page_token", "");
    // Another tenant sees none of it.
    assert!(all_indicators(c, "tenants/other").await.is_empty());
    h.server.stop().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_answer_on_the_real_server() {
    use tokio_stream::StreamExt;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = start(DbKind::Sqlite).await;
    let channel = Channel::from_shared(h.server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "kpi.catalog.v1.CatalogService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected answer")
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains("kpi.catalog.v1.CatalogService"), "{names:?}");
    assert!(names.contains("grpc.health.v1.Health"), "{names:?}");
    // Error details decode in grpcurl: reflection knows google.rpc.BadRequest.
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "google.rpc.BadRequest".into(),
        )),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("no reflection answer")
    };
    assert!(
        matches!(
            response.message_response,
            Some(MessageResponse::FileDescriptorResponse(_))
        ),
        "{:?}",
        response.message_response
    );
    h.server.stop().await.unwrap();
}
