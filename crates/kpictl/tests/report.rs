//! `kpictl report` against the in-process stack on real sockets (port 0):
//! the demo month plus a few hand-made events (an agent with a hostile
//! name, a rejected survey, an orphaned one), the page's content checked
//! against what scoring and data-ingestion answer, then opened in a real
//! headless Chromium (Debian's `chromium`): the page must mark itself
//! ready without script errors, and its screenshot must be a real picture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use kpi_proto::common as cpb;
use kpi_proto::ingestion as ing;
use kpi_proto::ingestion::event::Payload;
use kpi_proto::scoring as pb;
use kpi_runtime::auth::BearerToken;
use kpictl::ExitCode;
use kpictl::cli::Cli;
use kpictl::client::{self, ClientConfig, Service};
use kpictl::demo::generate;
use kpictl::stack::{self, Stack, StackOptions};

const HOSTILE: &str = "<script>alert(1)</script>";
const HOSTILE_ID: &str = "ecom-hostile";
/// A hang guard for the browser, not a performance threshold.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

fn options(dir: &Path) -> StackOptions {
    let any = "127.0.0.1:0".parse().expect("address");
    StackOptions {
        catalog_addr: any,
        ingestion_addr: any,
        scoring_addr: any,
        data_dir: dir.to_path_buf(),
        database_url: None,
        redis_url: None,
        log_filter: "warn".into(),
    }
}

/// `kpictl ARGS…` in this process.
async fn kpictl(args: &[&str]) -> ExitCode {
    let cli = Cli::try_parse_from(std::iter::once("kpictl").chain(args.iter().copied()))
        .expect("command line");
    kpictl::run(cli).await
}

/// The stack's generated local admin token (it never runs open).
fn token(stack: &Stack) -> String {
    let token = std::fs::read_to_string(&stack.credentials.token_file).expect("the token file");
    token.trim().to_owned()
}

/// How the test reaches one of the stack's services: its URL and token.
fn config(stack: &Stack, service: Service) -> ClientConfig {
    let addr = match service {
        Service::Catalog => stack.catalog,
        Service::Ingestion => stack.ingestion,
        Service::Scoring => stack.scoring,
    };
    let token = BearerToken::new(&token(stack)).expect("a valid token");
    ClientConfig::new(service, stack::url(addr)).with_token(Some(token))
}

fn event(id: &str, at: i64, payload: Payload) -> ing::Event {
    ing::Event {
        event_id: id.into(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
        payload: Some(payload),
    }
}

/// The hand-made events: an agent of team ecom whose name is markup, a
/// survey with an impossible score (rejected: out_of_range) and a survey of
/// a ticket nobody knows (accepted, an orphan).
fn hand_made() -> Vec<ing::Event> {
    let start = generate::MONTH_START;
    let survey = |id: &str, score: f64| ing::SurveyResponse {
        response_id: id.into(),
        kind: ing::SurveyKind::Csat as i32,
        score,
        ticket_id: "no-such-ticket".into(),
        agent_id: HOSTILE_ID.into(),
        ..Default::default()
    };
    vec![
        event(
            "hostile-roster",
            start - 30 * 86_400,
            Payload::Agent(ing::AgentUpsert {
                agent_id: HOSTILE_ID.into(),
                display_name: HOSTILE.into(),
                team_id: "ecom".into(),
                role: "chat_agent".into(),
                hired_on: "2020-01-01".into(),
                active: true,
            }),
        ),
        event(
            "hostile-survey-bad",
            start + 86_400,
            Payload::Survey(survey("r-bad", 7.0)),
        ),
        event(
            "hostile-survey-orphan",
            start + 86_400,
            Payload::Survey(survey("r-orphan", 4.0)),
        ),
    ]
}

/// The stack with the demo month and the hand-made events.
async fn filled_stack(dir: &Path) -> Stack {
    let stack = Stack::start(&options(dir)).await.expect("stack");
    let demo = kpictl(&[
        "--token",
        &token(&stack),
        "--ingestion-url",
        &stack::url(stack.ingestion),
        "--output",
        "json",
        "--catalog-url",
        &stack::url(stack.catalog),
        "--scoring-url",
        &stack::url(stack.scoring),
        "demo",
        "--use-running",
    ])
    .await;
    assert_eq!(demo, ExitCode::Ok, "kpictl demo");
    let answer = client::ingestion(&config(&stack, Service::Ingestion))
        .await
        .expect("connect")
        .ingest_events(ing::IngestEventsRequest {
            parent: "tenants/demo".into(),
            events: hand_made(),
        })
        .await
        .expect("IngestEvents")
        .into_inner();
    assert_eq!((answer.accepted, answer.rejected), (2, 1), "{answer:?}");
    stack
}

async fn report(stack: &Stack, period: &str, periods: &str, file: &Path) -> ExitCode {
    kpictl(&[
        "--token",
        &token(stack),
        "--ingestion-url",
        &stack::url(stack.ingestion),
        "report",
        "--tenant",
        "demo",
        "--team",
        "ecom",
        "--period",
        period,
        "--periods",
        periods,
        "--scoring-url",
        &stack::url(stack.scoring),
        "-o",
        file.to_str().expect("utf-8 path"),
    ])
    .await
}

fn month() -> Option<cpb::Period> {
    Some(cpb::Period {
        kind: cpb::PeriodKind::Month as i32,
        date: generate::MONTH.into(),
        end_date: String::new(),
    })
}

/// What scoring says about team ecom in October, to check the page by.
async fn expected(stack: &Stack) -> (Vec<pb::Scorecard>, Vec<pb::Alert>) {
    let mut scoring = client::scoring(&config(stack, Service::Scoring))
        .await
        .expect("connect");
    let cards = scoring
        .list_scorecards(pb::ListScorecardsRequest {
            parent: "tenants/demo".into(),
            team_id: "ecom".into(),
            period: month(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("ListScorecards")
        .into_inner()
        .scorecards;
    let alerts = scoring
        .list_alerts(pb::ListAlertsRequest {
            parent: "tenants/demo".into(),
            period: month(),
            team_id: "ecom".into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("ListAlerts")
        .into_inner()
        .alerts;
    (cards, alerts)
}

fn id(card: &pb::Scorecard) -> &str {
    card.subject.as_ref().map_or("", |s| s.id.as_str())
}

fn assert_contains(page: &str, needle: &str) {
    assert!(page.contains(needle), "the page lacks {needle:?}");
}

fn assert_month_page(page: &str, cards: &[pb::Scorecard], alerts: &[pb::Alert]) {
    // 70 generated agents and the hostile one.
    assert_eq!(cards.len(), 71);
    assert_eq!(page.matches(r#"<tr class="row"#).count(), cards.len());
    for card in cards {
        let id = id(card);
        assert_contains(page, &format!(r#"id="agent-{id}""#));
        if id != HOSTILE_ID {
            assert_contains(page, &card.display_name);
        }
        assert_contains(page, &format!("{:.1}", card.total));
        let rank = card.rank_in_team.as_ref().expect("rank").position;
        let row = format!(r##"<td class="num rank">{rank}</td><td><a href="#agent-{id}""##);
        if card.vetoes.is_empty() {
            assert_contains(page, &format!(r#"<tr class="row">{row}"#));
        } else {
            assert_contains(page, &format!(r#"<tr class="row veto">{row}"#));
            assert_contains(
                page,
                &format!(r#"<article class="card agent veto" id="agent-{id}">"#),
            );
            for veto in &card.vetoes {
                assert_contains(page, &format!("veto · {}</span>", veto.rule));
            }
        }
    }
    assert!(
        cards.iter().any(|c| !c.vetoes.is_empty()),
        "no vetoed agent"
    );
    assert!(!alerts.is_empty(), "no alert");
    for alert in alerts {
        assert_contains(page, &format!(r#"">{}</span>"#, alert.rule));
        assert_contains(page, &alert.reason.replace('\'', "&#39;"));
    }
    // The hostile name is shown, as text.
    assert_contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert!(!page.contains(HOSTILE), "the hostile name is not escaped");
    assert_eq!(page.matches("<script").count(), 1, "only the ready marker");
    // Nothing outside the page.
    for outside in ["http://", "https://", "//", "src=", "url(", "@import"] {
        assert!(!page.contains(outside), "the page refers to {outside:?}");
    }
    assert!(
        page.match_indices("href=\"")
            .all(|(at, m)| page[at + m.len()..].starts_with('#')),
        "a link leaves the page"
    );
    // Header, trend periods and data quality.
    assert_contains(page, "E-commerce <span class=\"team-id\">team ecom</span>");
    assert_contains(page, "2026-10 · 2026-10-01 to 2026-10-31 (UTC)");
    assert_contains(page, "ecommerce v");
    for label in ["2026-08", "2026-09", "2026-10"] {
        assert_contains(page, &format!(">{label}</text>"));
    }
    let accepted = generate::month(1).len() + 2;
    assert_contains(page, &format!("accepted <b>{accepted}</b>"));
    assert_contains(page, "rejected <b>1</b>");
    assert_contains(
        page,
        r#"<tr><td>out_of_range</td><td class="num">1</td></tr>"#,
    );
    assert_contains(
        page,
        r#"<tr><td>orphan_survey</td><td class="num">1</td></tr>"#,
    );
}

/// Runs Chromium with a hang guard; its stdout and stderr. They go to
/// files, not pipes: a DOM dump and verbose logs would fill a pipe nobody
/// reads before the browser exits.
fn chromium(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let out = dir.join(format!("{name}.stdout"));
    let err = dir.join(format!("{name}.stderr"));
    let file = |path: &Path| std::fs::File::create(path).expect("browser output file");
    let mut child = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("{name}.profile")).display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(file(&out))
        .stderr(file(&err))
        .spawn()
        .expect("run chromium (apt-get install chromium; .ci/run installs it)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium status") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            panic!("chromium hung for {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |path: &Path| std::fs::read_to_string(path).expect("browser output");
    let (stdout, stderr) = (read(&out), read(&err));
    assert!(status.success(), "chromium failed: {status:?}\n{stderr}");
    (stdout, stderr)
}

/// The page in a headless browser: the script ran (the marker is set),
/// nothing was uncaught, and the screenshot is a picture, not a blank.
fn check_in_browser(page: &Path, dir: &Path) {
    let url = format!("file://{}", page.display());
    let (dumped, console) = chromium(
        dir,
        "dom",
        &["--enable-logging=stderr", "--v=0", "--dump-dom", &url],
    );
    assert!(
        dumped.contains(r#"data-ready="1""#),
        "the ready marker is not set:\n{}",
        &dumped[..dumped.len().min(500)]
    );
    assert!(dumped.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!console.contains("Uncaught"), "script errors:\n{console}");

    let shot = dir.join("report.png");
    chromium(
        dir,
        "shot",
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
            "--hide-scrollbars",
            &url,
        ],
    );
    let (width, height, colours, share_of_commonest) = picture(&shot);
    assert_eq!((width, height), (1280, 2000));
    assert!(colours >= 200, "only {colours} colours: a blank page?");
    assert!(
        share_of_commonest < 0.8,
        "{:.0} % of the picture is one colour",
        share_of_commonest * 100.0
    );
    if let Ok(keep) = std::env::var("KPI_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("keep the screenshot");
    }
}

/// A PNG's size, its number of distinct colours and the share of pixels
/// in the commonest one.
fn picture(path: &Path) -> (u32, u32, usize, f64) {
    let bytes = std::fs::read(path).expect("screenshot");
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader.next_frame(&mut buffer).expect("PNG frame");
    let channels = frame.color_type.samples();
    let mut counts = std::collections::HashMap::<&[u8], usize>::new();
    for pixel in buffer[..frame.buffer_size()].chunks_exact(channels) {
        *counts.entry(pixel).or_default() += 1;
    }
    let pixels = (frame.width * frame.height) as f64;
    let commonest = counts.values().copied().max().unwrap_or(0) as f64;
    (frame.width, frame.height, counts.len(), commonest / pixels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_months_report_shows_the_team_and_renders_in_chromium() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stack = filled_stack(&dir.path().join("data")).await;

    let month_page: PathBuf = dir.path().join("month.html");
    assert_eq!(
        report(&stack, "2026-10", "3", &month_page).await,
        ExitCode::Ok
    );
    let page = std::fs::read_to_string(&month_page).expect("the report");
    let (cards, alerts) = expected(&stack).await;
    assert_month_page(&page, &cards, &alerts);

    // Weeks inside the month: every trend period has data.
    let week_page = dir.path().join("week.html");
    assert_eq!(
        report(&stack, "2026-W44", "5", &week_page).await,
        ExitCode::Ok
    );
    let week = std::fs::read_to_string(&week_page).expect("the weekly report");
    assert_contains(&week, "2026-W44 · 2026-10-26 to 2026-11-01");
    let trend = &week[week.find(r#"<svg class="trend""#).expect("trend chart")..];
    let trend = &trend[..trend.find("</svg>").expect("end of the chart")];
    for label in ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"] {
        assert_contains(trend, &format!(">{label}</text>"));
    }
    assert!(!trend.contains("no data"), "{trend}");
    assert_eq!(trend.matches("<circle").count(), 5, "{trend}");

    stack.stop().await.expect("the stack stops cleanly");
    check_in_browser(&month_page, dir.path());
}

#[tokio::test]
async fn an_unknown_team_is_a_usage_error_and_an_absent_service_exit_code_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stack = Stack::start(&options(dir.path())).await.expect("stack");
    let file = dir.path().join("none.html");
    assert_eq!(report(&stack, "2026-10", "2", &file).await, ExitCode::Usage);
    assert!(!file.exists(), "no page for an unknown team");
    let scoring = stack.scoring;
    stack.stop().await.expect("the stack stops cleanly");

    let gone = kpictl(&[
        "report",
        "--tenant",
        "demo",
        "--team",
        "ecom",
        "--period",
        "2026-10",
        "--scoring-url",
        &stack::url(scoring),
        "-o",
        file.to_str().expect("utf-8 path"),
    ])
    .await;
    assert_eq!(gone, ExitCode::Unreachable);
}
