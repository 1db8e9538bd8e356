//! The operator commands end to end: the three services in this process
//! (`kpictl::stack`, port 0) on SQLite and on PostgreSQL, a small catalog
//! applied with `catalog apply`, a hand-checkable month imported with
//! `kpictl import`, and every command driven through its parsed command
//! line, its numbers checked against values worked out by hand below.
//! The built binary is run too, for `--output json` on stdout and the exit
//! codes scripts see.
//!
//! The month (October 2026), template `ops_basic` v1: CSAT mean (linear 1→5,
//! weight 60, min sample 2) and QA mean (linear 50→100, weight 40); veto
//! `qa_avg < 60`; alert `csat_low` when the CSAT mean is below 3.
//!
//! | agent | CSAT | QA | CSAT score | QA score | total |
//! |---|---|---|---|---|---|
//! | a1 (t1) | 5, 4, 5 → 4.667 | 90, 80 → 85 | 91.667 | 70 | 0.6·91.667 + 0.4·70 = 83 (A) |
//! | a2 (t1) | 3, 2 → 2.5 | 55 | 37.5 | 10 | 22.5 + 4 = 26.5 (D, vetoed, alert) |
//! | a3 (t2) | 4 (1 < min 2) | 100 | – | 100 | 100 (QA takes all the weight) |
//!
//! The draft (weights 50/50): a1 45.833 + 35 = 80.833 (−2.167), a2 18.75 +
//! 5 = 23.75 (−2.75), a3 100 (0); mean change −1.639.

use std::process::Command;

use clap::Parser;
use kpi_testkit::{DbKind, TestDb};
use kpictl::ExitCode;
use kpictl::cli::Cli;
use kpictl::client::{self, CallError, ClientConfig, Service};
use kpictl::ops::{self, Printed};
use kpictl::stack::{self, Stack, StackOptions};
use serde_json::Value;

/// The catalog of the README's examples.
const CATALOG: &str = include_str!("../../../examples/kpictl/catalog.yaml");

/// The draft simulated: the same items, weighted 50/50.
const DRAFT: &str = include_str!("../../../examples/kpictl/draft.yaml");

/// Weights summing to 90: refused with the path of the weights.
const BAD_CATALOG: &str = r#"api_version: kpi.catalog/v1
templates:
  - key: lopsided
    versions:
      - version: 1
        state: draft
        definition:
          items:
            - {indicator: qa_avg, weight: 90, scoring: {linear: {worst: 50, best: 100}}}
          effective_from: 2020-01-01
"#;

/// The month of the table above (and of the README's examples).
const EVENTS: &str = include_str!("../../../examples/kpictl/month.jsonl");

/// The stack and the URLs of its services, as global options.
struct Harness {
    stack: Stack,
    urls: Vec<String>,
    dir: tempfile::TempDir,
    _db: Option<TestDb>,
}

impl Harness {
    async fn start(kind: DbKind) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = match kind {
            DbKind::Postgres => Some(TestDb::new(DbKind::Postgres).await.unwrap()),
            DbKind::Sqlite => None,
        };
        let any = "127.0.0.1:0".parse().unwrap();
        let stack = Stack::start(&StackOptions {
            catalog_addr: any,
            ingestion_addr: any,
            scoring_addr: any,
            data_dir: dir.path().join("data"),
            database_url: db.as_ref().map(|db| db.url.clone()),
            redis_url: None,
            log_filter: "warn".into(),
        })
        .await
        .unwrap();
        let urls = vec![
            "--catalog-url".into(),
            stack::url(stack.catalog),
            "--ingestion-url".into(),
            stack::url(stack.ingestion),
            "--scoring-url".into(),
            stack::url(stack.scoring),
            // The stack's generated local admin token (it never runs open).
            "--token".into(),
            std::fs::read_to_string(&stack.credentials.token_file)
                .unwrap()
                .trim()
                .to_owned(),
        ];
        Harness {
            stack,
            urls,
            dir,
            _db: db,
        }
    }

    fn cli(&self, args: &[&str]) -> Cli {
        let mut line = vec!["kpictl".to_owned()];
        line.extend(self.urls.iter().cloned());
        line.extend(args.iter().map(|a| a.to_string()));
        Cli::parse_from(line)
    }

    /// Runs an operator command and returns what it prints.
    async fn ok(&self, args: &[&str]) -> Printed {
        match self.result(args).await {
            Ok(printed) => printed,
            Err(e) => panic!("kpictl {args:?} failed: {e}"),
        }
    }

    async fn result(&self, args: &[&str]) -> Result<Printed, CallError> {
        ops::execute(&self.cli(args))
            .await
            .expect("an operator command")
    }

    /// Runs any command as `kpictl` would and returns its exit code.
    async fn exit(&self, args: &[&str]) -> ExitCode {
        kpictl::run(self.cli(args)).await
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// The built binary against this stack.
    fn binary(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_kpictl"))
            .args(&self.urls)
            .args(args)
            .env_remove("KPI_TENANT")
            .output()
            .unwrap()
    }
}

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() < 1e-6)
}

#[track_caller]
fn assert_close(actual: &Value, expected: f64) {
    assert!(close(actual, expected), "{actual} is not {expected}");
}

async fn catalog_round_trip(h: &Harness) {
    let catalog = h.file("catalog.yaml", CATALOG);
    let dry = h
        .ok(&[
            "catalog",
            "apply",
            "--tenant",
            "ops",
            "-f",
            &catalog,
            "--dry-run",
        ])
        .await;
    assert_eq!(dry.json["dry_run"], true);
    assert_eq!(dry.json["created"], 4, "{}", dry.json);
    let empty = h
        .ok(&["catalog", "export", "--tenant", "ops", "--format", "json"])
        .await;
    let content: Value = serde_json::from_str(empty.json["content"].as_str().unwrap()).unwrap();
    assert!(
        content.get("templates").is_none(),
        "the dry run wrote: {content}"
    );

    let applied = h
        .ok(&["catalog", "apply", "--tenant", "ops", "-f", &catalog])
        .await;
    assert_eq!(applied.json["created"], 4, "{}", applied.json);
    assert_eq!(applied.json["unchanged"], 0);
    assert!(
        applied.text.contains("template ops_basic v1 active"),
        "{}",
        applied.text
    );

    let exported = h.dir.path().join("exported.yaml").display().to_string();
    let export = h
        .ok(&["catalog", "export", "--tenant", "ops", "-o", &exported])
        .await;
    assert_eq!(export.json["file"], exported.as_str());
    let again = h
        .ok(&["catalog", "apply", "--tenant", "ops", "-f", &exported])
        .await;
    assert_eq!(
        (
            &again.json["created"],
            &again.json["updated"],
            &again.json["unchanged"]
        ),
        (&Value::from(0), &Value::from(0), &Value::from(4)),
        "{}",
        again.json
    );
    let copy = h
        .ok(&["catalog", "apply", "--tenant", "copy", "-f", &exported])
        .await;
    assert_eq!(copy.json["created"], 4, "{}", copy.json);
    let copied = h.ok(&["catalog", "export", "--tenant", "copy"]).await;
    assert_eq!(copied.text, std::fs::read_to_string(&exported).unwrap());

    let starter = h
        .ok(&["catalog", "install-starter", "--tenant", "starter"])
        .await;
    assert!(
        starter.json["created"].as_i64().unwrap() > 10,
        "{}",
        starter.json
    );
    let twice = h
        .ok(&["catalog", "install-starter", "--tenant", "starter"])
        .await;
    assert_eq!(twice.json["created"], 0, "{}", twice.json);

    let bad = h.file("bad.yaml", BAD_CATALOG);
    let error = h
        .result(&["catalog", "apply", "--tenant", "ops", "-f", &bad])
        .await
        .unwrap_err();
    assert_eq!(error.exit, ExitCode::Usage, "{error}");
    assert!(
        error
            .fields
            .iter()
            .any(|f| f.starts_with("templates[0].versions[0].definition")),
        "{error:?}"
    );
    assert!(error.message.contains(&bad), "{error}");
    assert!(
        error
            .message
            .contains("templates[0].versions[0].definition"),
        "{error}"
    );
    assert_eq!(
        h.exit(&["catalog", "apply", "--tenant", "ops", "-f", &bad])
            .await,
        ExitCode::Usage
    );
}

async fn import_month(h: &Harness) {
    let file = h.file("month.jsonl", EVENTS);
    assert_eq!(
        h.exit(&["import", "--tenant", "ops", &file]).await,
        ExitCode::Ok
    );
}

async fn scorecards(h: &Harness) {
    let get = h
        .ok(&[
            "scorecard",
            "get",
            "--tenant",
            "ops",
            "--agent",
            "a1",
            "--period",
            "2026-10",
        ])
        .await;
    let card = &get.json;
    assert_close(&card["total"], 83.0);
    assert_eq!(card["grade"], "A");
    assert_eq!(card["template"], "ops_basic");
    assert_eq!(card["period"], "2026-10");
    let csat = &card["indicators"][0];
    assert_eq!(csat["indicator"], "csat_mean");
    assert_close(&csat["value"], 14.0 / 3.0);
    assert_eq!(csat["sample_size"], 3);
    assert_eq!(csat["sufficient"], true);
    assert_close(&csat["score"], (14.0 / 3.0 - 1.0) / 4.0 * 100.0);
    assert_close(&csat["contribution"], 55.0);
    let qa = &card["indicators"][1];
    assert_close(&qa["value"], 85.0);
    assert_close(&qa["score"], 70.0);
    assert_close(&qa["contribution"], 28.0);
    // Rounded for reading in text.
    assert!(get.text.contains("total 83.0, grade A"), "{}", get.text);
    assert!(get.text.contains("4.67"), "{}", get.text);

    let team = h
        .ok(&[
            "scorecard",
            "get",
            "--tenant",
            "ops",
            "--team",
            "t1",
            "--period",
            "2026-10",
        ])
        .await;
    // From the team's facts: CSAT (5+4+5+3+2)/5 = 3.8 → 70, QA
    // (90+80+55)/3 = 75 → 50; 0.6·70 + 0.4·50 = 62.
    assert_eq!(team.json["agent"], "t1");
    assert_close(&team.json["total"], 62.0);
    assert_eq!(team.json["grade"], "C");

    let board = h
        .ok(&[
            "scorecard",
            "list",
            "--tenant",
            "ops",
            "--team",
            "t1",
            "--period",
            "2026-10",
        ])
        .await;
    let rows = board.json["rows"].as_array().unwrap();
    let agents: Vec<&str> = rows.iter().map(|r| r["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["a1", "a2"], "{}", board.text);
    assert_eq!(rows[0]["rank"], 1);
    assert_close(&rows[1]["total"], 26.5);
    assert_eq!(rows[1]["grade"], "D");
    assert_eq!(rows[1]["vetoes"], serde_json::json!(["qa_floor"]));
    assert_eq!(rows[1]["alerts"], serde_json::json!(["csat_low"]));
    assert!(board.text.contains("VETO"), "{}", board.text);
    let everyone = h
        .ok(&[
            "scorecard",
            "list",
            "--tenant",
            "ops",
            "--period",
            "2026-10",
            "--page-size",
            "2",
        ])
        .await;
    assert_eq!(everyone.json["total_size"], 3);
    let top: Vec<&str> = everyone.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["agent"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["a3", "a1"]);
    // Ranked in the tenant when the list spans every team.
    assert_eq!(everyone.json["rows"][1]["rank"], 2);
    assert!(
        !everyone.json["next_page_token"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    let explained = h
        .ok(&[
            "scorecard",
            "explain",
            "--tenant",
            "ops",
            "--agent",
            "a3",
            "--period",
            "2026-10",
        ])
        .await;
    let e = &explained.json;
    assert_close(&e["total"], 100.0);
    let csat = &e["indicators"][0];
    assert_eq!(csat["sufficient"], false);
    assert_eq!(csat["sample_size"], 1);
    assert_eq!(csat["min_sample"], 2);
    assert!(csat["score"].is_null());
    assert_close(&e["indicators"][1]["effective_weight"], 100.0);
    assert_close(&e["indicators"][1]["contribution"], 100.0);
    assert_eq!(e["explanations"].as_array().unwrap().len(), 2);
    assert!(explained.text.contains("FORMULAS"), "{}", explained.text);

    let vetoed = h
        .ok(&[
            "scorecard",
            "explain",
            "--tenant",
            "ops",
            "--agent",
            "a2",
            "--period",
            "2026-10",
        ])
        .await;
    assert!(
        vetoed.json["vetoes"][0]
            .as_str()
            .unwrap()
            .starts_with("qa_floor"),
        "{}",
        vetoed.json
    );
    assert!(vetoed.text.contains("veto: qa_floor"), "{}", vetoed.text);
}

async fn alerts(h: &Harness) {
    let all = h
        .ok(&["alerts", "list", "--tenant", "ops", "--period", "2026-10"])
        .await;
    let alerts = all.json["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{}", all.json);
    assert_eq!(alerts[0]["subject"], "a2");
    assert_eq!(alerts[0]["rule"], "csat_low");
    assert_close(&alerts[0]["series"]["csat_mean"][0], 2.5);
    let none = h
        .ok(&[
            "alerts", "list", "--tenant", "ops", "--team", "t2", "--period", "2026-10",
        ])
        .await;
    assert_eq!(none.json["alerts"], serde_json::json!([]));
    let mine = h
        .ok(&[
            "alerts", "list", "--tenant", "ops", "--agent", "a2", "--period", "2026-Q4",
        ])
        .await;
    assert_eq!(
        mine.json["alerts"].as_array().unwrap().len(),
        1,
        "{}",
        mine.json
    );
}

async fn simulate(h: &Harness) {
    let draft = h.file("draft.yaml", DRAFT);
    let args = [
        "simulate",
        "--tenant",
        "ops",
        "--template",
        "ops_basic",
        "--period",
        "2026-10",
    ];
    let from_file = h.ok(&[&args[..], &["--file", &draft]].concat()).await;
    let s = &from_file.json;
    assert_eq!(s["version"], 2, "{s}");
    assert_eq!(s["active_version"], 1, "{s}");
    let a1_csat = (14.0 / 3.0 - 1.0) / 4.0 * 100.0;
    let a1_change = 0.5 * a1_csat + 0.5 * 70.0 - 83.0;
    assert_close(&s["mean_change"], (a1_change - 2.75 + 0.0) / 3.0);
    let change = |agent: &str| {
        s["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["agent"] == agent)
            .unwrap_or_else(|| panic!("no row of {agent}: {s}"))
            .clone()
    };
    assert_close(&change("a1")["simulated_total"], 83.0 + a1_change);
    assert_close(&change("a1")["change"], a1_change);
    assert_close(&change("a1")["active_total"], 83.0);
    assert_close(&change("a2")["change"], -2.75);
    assert_close(&change("a3")["change"], 0.0);
    assert!(
        from_file.text.contains("mean change -1.64"),
        "{}",
        from_file.text
    );

    // The draft is kept: simulating it by number gives the same; saving the
    // file again edits the same draft.
    let by_version = h.ok(&[&args[..], &["--version", "2"]].concat()).await;
    assert_eq!(by_version.json["rows"], s["rows"]);
    let again = h.ok(&[&args[..], &["--file", &draft]].concat()).await;
    assert_eq!(again.json["version"], 2);

    let bad = h.file(
        "bad-draft.yaml",
        "items:\n  - {indicator: qa_avg, weight: 90}\neffective_from: 2020-01-01\n",
    );
    let error = h
        .result(&[&args[..], &["--file", &bad]].concat())
        .await
        .unwrap_err();
    assert_eq!(error.exit, ExitCode::Usage, "{error}");
    assert!(error.message.starts_with(&bad), "{error}");
    assert!(!error.message.contains("templates[0]"), "{error}");
}

async fn usage_errors(h: &Harness) {
    let bad_period = h
        .result(&[
            "scorecard",
            "get",
            "--tenant",
            "ops",
            "--agent",
            "a1",
            "--period",
            "2026-13",
        ])
        .await
        .unwrap_err();
    assert_eq!(bad_period.exit, ExitCode::Usage);
    assert!(
        bad_period.message.contains("invalid --period `2026-13`"),
        "{bad_period}"
    );
    assert_eq!(
        h.exit(&[
            "alerts",
            "list",
            "--tenant",
            "ops",
            "--period",
            "last month"
        ])
        .await,
        ExitCode::Usage
    );
    let unknown_agent = h
        .result(&[
            "scorecard",
            "explain",
            "--tenant",
            "ops",
            "--agent",
            "nobody",
            "--period",
            "2026-10",
        ])
        .await
        .unwrap_err();
    assert_eq!(unknown_agent.exit, ExitCode::Usage, "{unknown_agent}");
    assert!(unknown_agent.message.contains("nobody"), "{unknown_agent}");
    let bad_tenant = h
        .result(&[
            "scorecard",
            "list",
            "--tenant",
            "Not A Tenant",
            "--period",
            "2026-10",
        ])
        .await
        .unwrap_err();
    assert_eq!(bad_tenant.exit, ExitCode::Usage, "{bad_tenant}");
    assert!(
        bad_tenant.fields.iter().any(|f| f == "parent"),
        "{bad_tenant:?}"
    );
    let unknown_template = h
        .result(&[
            "simulate",
            "--tenant",
            "ops",
            "--template",
            "nosuch",
            "--version",
            "1",
            "--period",
            "2026-10",
        ])
        .await
        .unwrap_err();
    assert_eq!(unknown_template.exit, ExitCode::Usage, "{unknown_template}");
}

/// `--output json` on stdout, and the process's exit codes.
fn binary(h: &Harness) {
    let list = h.binary(&[
        "--output",
        "json",
        "scorecard",
        "list",
        "--tenant",
        "ops",
        "--team",
        "t1",
        "--period",
        "2026-10",
    ]);
    assert_eq!(
        list.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let value: Value = serde_json::from_slice(&list.stdout).expect("one JSON object");
    assert_eq!(value["rows"].as_array().unwrap().len(), 2);

    let bad = h.binary(&[
        "--output",
        "json",
        "scorecard",
        "get",
        "--tenant",
        "ops",
        "--agent",
        "a1",
        "--period",
        "2026-W60",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let value: Value = serde_json::from_slice(&bad.stdout).expect("the error as JSON");
    assert_eq!(value["exit_code"], 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2026-W60"));
}

/// The metadata hook runs on every request of a client made from a
/// `ClientConfig` (where a later bearer token goes), and its refusal stops
/// the call as a usage error.
async fn metadata_hook(h: &Harness) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tonic::metadata::MetadataValue;

    let scoring_url = stack::url(h.stack.scoring);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // The hook carries the stack's token, the last of the global options.
    let bearer: MetadataValue<_> = format!("Bearer {}", h.urls.last().unwrap())
        .parse()
        .unwrap();
    let config = ClientConfig::new(Service::Scoring, scoring_url.clone()).with_metadata(Arc::new(
        move |metadata| {
            counted.fetch_add(1, Ordering::SeqCst);
            metadata.insert("x-kpictl-test", MetadataValue::from_static("1"));
            metadata.insert("authorization", bearer.clone());
            Ok(())
        },
    ));
    let mut scoring = client::scoring(&config).await.unwrap();
    let request = kpi_proto::scoring::ListAlertsRequest {
        parent: "tenants/ops".into(),
        period: Some(kpictl::ops::period::parse("2026-10").unwrap()),
        ..Default::default()
    };
    let alerts = scoring.list_alerts(request.clone()).await.unwrap();
    assert_eq!(alerts.into_inner().alerts.len(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let refusing = ClientConfig::new(Service::Scoring, scoring_url).with_metadata(Arc::new(|_| {
        Err(tonic::Status::unauthenticated("no token configured"))
    }));
    let mut scoring = client::scoring(&refusing).await.unwrap();
    let status = scoring.list_alerts(request).await.unwrap_err();
    let error = refusing.call_error("ListAlerts", &status);
    assert_eq!(error.exit, ExitCode::Usage, "{error}");
    assert!(error.message.contains("no token configured"), "{error}");
}

async fn scenario(kind: DbKind) {
    let h = Harness::start(kind).await;
    catalog_round_trip(&h).await;
    import_month(&h).await;
    scorecards(&h).await;
    alerts(&h).await;
    simulate(&h).await;
    usage_errors(&h).await;
    metadata_hook(&h).await;
    tokio::task::block_in_place(|| binary(&h));
    h.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_sqlite() {
    scenario(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_postgres() {
    scenario(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_exit_code_3_naming_the_url() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for (option, args) in [
        (
            "--scoring-url",
            vec!["alerts", "list", "--tenant", "ops", "--period", "2026-10"],
        ),
        (
            "--catalog-url",
            vec!["catalog", "export", "--tenant", "ops"],
        ),
    ] {
        let mut line = vec!["kpictl", option, &url];
        line.extend(args);
        let cli = Cli::parse_from(&line);
        let error = ops::execute(&cli).await.unwrap().unwrap_err();
        assert_eq!(error.exit, ExitCode::Unreachable, "{error}");
        assert!(error.message.contains(&url), "{error}");
        assert_eq!(kpictl::run(cli).await, ExitCode::Unreachable);
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_kpictl"))
            .args([
                "--scoring-url",
                &url,
                "scorecard",
                "list",
                "--tenant",
                "ops",
                "--period",
                "2026-10",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach scoring at"));
}
