//! `kpictl import` end to end: a real indicator-catalog and data-ingestion
//! on a fresh SQLite database, files written to a temporary directory, the
//! import run through the library and through the built binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use kpi_runtime::ServiceKind;
use kpi_testkit::{DbKind, RunningServer, TestDb};
use kpictl::ExitCode;
use kpictl::import::{ImportError, ImportOptions, import};
use kpictl::progress::Progress;

struct Harness {
    url: String,
    servers: Vec<RunningServer>,
    _db: TestDb,
}

impl Harness {
    async fn stop(self) {
        for s in self.servers {
            s.stop().await.unwrap();
        }
    }
}

async fn start() -> Harness {
    let db = TestDb::new(DbKind::Sqlite).await.unwrap();
    let catalog_app =
        indicator_catalog::App::build(&kpi_testkit::settings(ServiceKind::Catalog, &db.url))
            .await
            .unwrap();
    let catalog_addr = catalog_app.local_addr().unwrap();
    let catalog_server = RunningServer::spawn(catalog_addr, |s| catalog_app.run_until_stopped(s));
    let mut settings = kpi_testkit::settings(ServiceKind::Ingestion, &db.url);
    settings.catalog_url = catalog_server.endpoint();
    let app = data_ingestion::App::build(&settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let server = RunningServer::spawn(addr, |s| app.run_until_stopped(s));
    Harness {
        url: server.endpoint(),
        servers: vec![server, catalog_server],
        _db: db,
    }
}

/// The good JSON Lines events: a ticket lifecycle, a survey and a QA review.
const GOOD_JSONL: &[&str] = &[
    r#"{"event_id":"j1","occurred_at":"2026-10-05T09:00:00Z","payload":{"ticket":{"ticket_id":"T1","type":"created","channel":"chat","category":"billing","customer_id":"c1"}}}"#,
    r#"{"event_id":"j2","occurred_at":"2026-10-05T09:01:00Z","payload":{"ticket":{"ticket_id":"T1","type":"assigned","agent_id":"a1"}}}"#,
    r#"{"event_id":"j3","occurred_at":"2026-10-05T09:05:00Z","payload":{"ticket":{"ticket_id":"T1","type":"first_response","agent_id":"a1"}}}"#,
    r#"{"event_id":"j4","occurred_at":"2026-10-05T10:00:00Z","payload":{"ticket":{"ticket_id":"T1","type":"resolved","agent_id":"a1","handle_seconds":600}}}"#,
    r#"{"event_id":"j5","occurred_at":"2026-10-05T11:00:00Z","payload":{"survey":{"response_id":"R1","kind":"csat","score":5,"ticket_id":"T1"}}}"#,
    r#"{"event_id":"j6","occurred_at":"2026-10-06T09:00:00Z","payload":{"qa_review":{"review_id":"Q1","agent_id":"a1","reviewer_id":"r1","ticket_id":"T1","score":92,"items":[{"key":"greeting","group":"service","passed":true,"score":100}]}}}"#,
];

/// A survey with CSAT score 9: readable, refused by the service.
const INVALID_JSONL: &str = r#"{"event_id":"j7","occurred_at":"2026-10-05T12:00:00Z","payload":{"survey":{"response_id":"R2","kind":"csat","score":9,"ticket_id":"T1"}}}"#;

const CSV_HEADER: &str = "event_id,occurred_at,kind,ticket_id,type,agent_id,channel,category,customer_id,handle_seconds,response_id,survey.kind,score,review_id,reviewer_id,items";

/// The good CSV rows: another ticket lifecycle, a survey and a QA review
/// whose items are a JSON cell.
const GOOD_CSV: &[&str] = &[
    "c1,2026-10-07T09:00:00Z,ticket,T2,created,,phone,refund,c2,,,,,,,",
    "c2,2026-10-07T09:02:00Z,ticket,T2,assigned,a2,,,,,,,,,,",
    "c3,2026-10-07T09:04:00Z,ticket,T2,first_response,a2,,,,,,,,,,",
    "c4,2026-10-07T09:30:00Z,ticket,T2,resolved,a2,,,,300,,,,,,",
    "c5,2026-10-07T10:00:00Z,survey,T2,,,,,,,R3,csat,4,,,",
    r#"c6,2026-10-08T09:00:00Z,qa_review,T2,,a2,,,,,,,88,Q2,r1,"[{""key"":""greeting"",""group"":""service"",""passed"":true,""score"":100},{""key"":""refund_policy"",""group"":""compliance"",""passed"":false,""score"":40}]""#,
];

const INVALID_CSV: &str = "c7,2026-10-07T11:00:00Z,survey,T2,,,,,,,R4,csat,9,,,";
const UNPARSABLE_CSV: &str = "c8,2026-10-07T11:00:00Z,ticket,T2,created,,fax,,,,,,,,,";

/// Writes the mixed files (good events, one invalid, one unparsable each)
/// and returns (jsonl, csv). The JSON Lines file has a blank line too.
fn write_mixed(dir: &Path) -> (PathBuf, PathBuf) {
    let jsonl = dir.join("events.jsonl");
    let mut lines: Vec<&str> = GOOD_JSONL[..3].to_vec();
    lines.push("");
    lines.extend(&GOOD_JSONL[3..]);
    lines.push(INVALID_JSONL); // line 8
    lines.push(r#"{"event_id":"j8","occurred_at":"#); // line 9
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();

    let csv = dir.join("events.csv");
    let mut rows = vec![CSV_HEADER];
    rows.extend(GOOD_CSV);
    rows.push(INVALID_CSV); // line 8
    rows.push(UNPARSABLE_CSV); // line 9
    std::fs::write(&csv, rows.join("\n") + "\n").unwrap();
    (jsonl, csv)
}

/// The good events only, as they were in the mixed files.
fn write_good(dir: &Path) -> (PathBuf, PathBuf) {
    let jsonl = dir.join("good.ndjson");
    std::fs::write(&jsonl, GOOD_JSONL.join("\n")).unwrap();
    let csv = dir.join("good.csv");
    let mut rows = vec![CSV_HEADER];
    rows.extend(GOOD_CSV);
    std::fs::write(&csv, rows.join("\r\n")).unwrap();
    (jsonl, csv)
}

fn options(url: &str, files: &[&Path]) -> ImportOptions {
    ImportOptions {
        url: url.to_owned(),
        tenant: "acme".to_owned(),
        files: files.iter().map(|p| p.to_path_buf()).collect(),
        format: None,
        chunk: 4,
        token: None,
    }
}

fn kpictl(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kpictl"))
        .env("KPI_INGESTION_URL", url)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_mixed_files_then_replays_them_as_duplicates() {
    let h = start().await;
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, csv) = write_mixed(dir.path());

    let summary = import(&options(&h.url, &[&jsonl, &csv]), &Progress::hidden())
        .await
        .unwrap();
    assert_eq!(summary.sent, 14, "{summary:?}");
    assert_eq!(summary.accepted, 12, "{summary:?}");
    assert_eq!(summary.duplicates, 0);
    assert_eq!(summary.rejected, 2);
    assert_eq!(summary.rejected_by_reason.get("out_of_range"), Some(&2));
    assert_eq!(summary.unreadable, 2);
    assert_eq!(summary.exit_code(), ExitCode::Incomplete);

    let jsonl_name = jsonl.display().to_string();
    let csv_name = csv.display().to_string();
    let r = &summary.rejections;
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].file.as_str(), r[0].line), (jsonl_name.as_str(), 8));
    assert_eq!(r[0].event_id, "j7");
    assert_eq!(r[0].reason, "out_of_range");
    assert_eq!(r[0].field, "survey.score");
    assert!(!r[0].description.is_empty());
    assert_eq!((r[1].file.as_str(), r[1].line), (csv_name.as_str(), 8));
    assert_eq!(r[1].event_id, "c7");
    assert_eq!(r[1].field, "survey.score");

    let u = &summary.unreadable_lines;
    assert_eq!(u.len(), 2);
    assert_eq!((u[0].file.as_str(), u[0].line), (jsonl_name.as_str(), 9));
    assert_eq!((u[1].file.as_str(), u[1].line), (csv_name.as_str(), 9));
    assert!(
        u[1].reason.starts_with("channel: unknown variant `fax`"),
        "{u:?}"
    );

    // The same files again: every readable, valid event is a duplicate.
    let again = import(&options(&h.url, &[&jsonl, &csv]), &Progress::hidden())
        .await
        .unwrap();
    assert_eq!(
        (
            again.accepted,
            again.duplicates,
            again.rejected,
            again.unreadable
        ),
        (0, 12, 2, 2)
    );

    // The good events alone, as a replay: all duplicates, exit code 0.
    let (good_jsonl, good_csv) = write_good(dir.path());
    let replay = import(
        &options(&h.url, &[&good_jsonl, &good_csv]),
        &Progress::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replay.accepted,
            replay.duplicates,
            replay.rejected,
            replay.unreadable
        ),
        (0, 12, 0, 0)
    );
    assert_eq!(replay.exit_code(), ExitCode::Ok);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_and_exits_as_documented() {
    let h = start().await;
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, csv) = write_mixed(dir.path());
    let (good_jsonl, good_csv) = write_good(dir.path());
    let url = h.url.clone();
    let (j, c) = (jsonl.display().to_string(), csv.display().to_string());
    let (gj, gc) = (
        good_jsonl.display().to_string(),
        good_csv.display().to_string(),
    );
    let (mixed, replay, json, bad_tenant) = tokio::task::spawn_blocking(move || {
        let mixed = kpictl(
            &url,
            &["import", "--tenant", "acme", "--chunk", "3", &j, &c],
        );
        let replay = kpictl(&url, &["import", "--tenant", "acme", &gj, &gc]);
        let json = kpictl(
            &url,
            &["--output", "json", "import", "--tenant", "acme", &gj],
        );
        let bad_tenant = kpictl(&url, &["import", "--tenant", "Not A Tenant", &gj]);
        (mixed, replay, json, bad_tenant)
    })
    .await
    .unwrap();

    let text = String::from_utf8(mixed.stdout).unwrap();
    assert_eq!(mixed.status.code(), Some(1), "{text}");
    assert!(text.contains("accepted    12"), "{text}");
    assert!(text.contains("duplicates  0"), "{text}");
    assert!(text.contains("rejected    2"), "{text}");
    assert!(text.contains("out_of_range: 2"), "{text}");
    assert!(text.contains("unreadable  2"), "{text}");
    assert!(
        text.contains(&format!(
            "{}:8 j7 out_of_range survey.score ",
            jsonl.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}:8 c7 out_of_range survey.score ",
            csv.display()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("{}:9 ", jsonl.display())), "{text}");
    assert!(text.contains("events/s"), "{text}");

    let text = String::from_utf8(replay.stdout).unwrap();
    assert_eq!(replay.status.code(), Some(0), "{text}");
    assert!(text.contains("accepted    0"), "{text}");
    assert!(text.contains("duplicates  12"), "{text}");

    assert_eq!(json.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["duplicates"], 6);
    assert_eq!(value["exit_code"], 0);
    assert!(
        json.stderr.is_empty(),
        "no progress bar when not a terminal"
    );

    assert_eq!(bad_tenant.status.code(), Some(2));
    let err = String::from_utf8(bad_tenant.stderr).unwrap();
    assert!(err.contains("data-ingestion refused the import"), "{err}");
    assert!(err.contains("parent"), "{err}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_file_and_connection_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (good_jsonl, _) = write_good(dir.path());
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");

    let err = import(&options(&url, &[&good_jsonl]), &Progress::hidden())
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::Unreachable);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach data-ingestion at {url}: ")),
        "{err}"
    );

    let missing = dir.path().join("missing.jsonl");
    let err = import(&options(&url, &[&missing]), &Progress::hidden())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Usage, "{err}");

    let bad_header = dir.path().join("bad.csv");
    std::fs::write(&bad_header, "event_id,occurred_at,kind,agentid\n").unwrap();
    let err = import(&options(&url, &[&bad_header]), &Progress::hidden())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Usage);
    assert!(err.to_string().contains("`agentid`"), "{err}");

    let g = good_jsonl.display().to_string();
    let txt = dir.path().join("events.txt").display().to_string();
    let u = url.clone();
    let (unreachable, no_format, bad_flag) = tokio::task::spawn_blocking(move || {
        (
            kpictl(&u, &["import", "--tenant", "acme", &g]),
            kpictl(&u, &["import", "--tenant", "acme", &txt]),
            kpictl(&u, &["import", "--tenant", "acme", "--chunk", "0", &g]),
        )
    })
    .await
    .unwrap();
    assert_eq!(unreachable.status.code(), Some(3));
    let err = String::from_utf8(unreachable.stderr).unwrap();
    assert!(
        err.contains(&format!("cannot reach data-ingestion at {url}: ")),
        "{err}"
    );
    assert_eq!(no_format.status.code(), Some(2));
    assert_eq!(bad_flag.status.code(), Some(2));
}
