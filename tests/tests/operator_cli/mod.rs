//! `kpictl` as a user drives it: `kpictl up` as a process on PostgreSQL and
//! Redis (port 0), then every step a separate `kpictl` process over real
//! sockets, the way an operator types them: apply a catalog, import a month
//! of events, get a scorecard, explain one, render the HTML report. The
//! numbers are the hand-computed ones of `crates/kpictl/tests/operator.rs`
//! (the same example files): a1 83.0 (A); a2 26.5 (D, vetoed by
//! `qa_floor`, alert `csat_low`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use kpi_testkit::{DbKind, TestDb, shared_redis_url};
use serde_json::Value;

/// The example catalog and month, shared with the README and operator tests.
fn example(name: &str) -> String {
    format!("{}/../examples/kpictl/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A `kpictl` command with nothing inherited that would point it elsewhere.
fn kpictl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-kpictl"));
    for var in [
        "KPI_DATABASE_URL",
        "KPI_REDIS_URL",
        "KPI_CATALOG_URL",
        "KPI_INGESTION_URL",
        "KPI_SCORING_URL",
        "KPI_TENANT",
        "KPI_CONFIG_FILE",
        "KPI_TOKEN",
    ] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

/// `kpictl up` running, and the global options that reach it (its URLs and
/// its token).
struct Up {
    child: Child,
    stdout: BufReader<ChildStdout>,
    urls: Vec<String>,
}

impl Up {
    /// Starts `kpictl up` on `database_url` and the shared Redis, port 0,
    /// and reads the three addresses from its banner.
    fn start(database_url: &str, data_dir: &Path) -> Up {
        let mut child = kpictl()
            .args(["up", "--log", "warn", "--data-dir"])
            .arg(data_dir)
            .args(["--catalog-addr", "127.0.0.1:0"])
            .args(["--ingestion-addr", "127.0.0.1:0"])
            .args(["--scoring-addr", "127.0.0.1:0"])
            .env("KPI_DATABASE_URL", database_url)
            .env("KPI_REDIS_URL", shared_redis_url())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kpictl up");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut urls = Vec::new();
        let mut line = String::new();
        while stdout.read_line(&mut line).expect("banner line") > 0 {
            let text = std::mem::take(&mut line);
            if text.starts_with("press Ctrl-C") {
                break;
            }
            for (service, flag) in [
                ("indicator-catalog", "--catalog-url"),
                ("data-ingestion", "--ingestion-url"),
                ("scoring", "--scoring-url"),
            ] {
                if let Some(rest) = text.strip_prefix(service) {
                    let addr = rest.trim().trim_start_matches("listening on ");
                    urls.extend([flag.to_owned(), format!("http://{addr}")]);
                }
            }
        }
        assert_eq!(urls.len(), 6, "kpictl up did not print three addresses");
        // The stack never runs open: every command sends its generated token.
        let token = std::fs::read_to_string(data_dir.join("token")).expect("kpictl up's token");
        urls.extend(["--token".to_owned(), token.trim().to_owned()]);
        Up {
            child,
            stdout,
            urls,
        }
    }

    /// Runs `kpictl <args>` against this stack.
    fn run(&self, args: &[&str]) -> Output {
        kpictl()
            .args(&self.urls)
            .args(args)
            .output()
            .expect("run kpictl")
    }

    /// Runs `kpictl --output json <args>`, expects exit 0, parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let output = self.run(&[&["--output", "json"], args].concat());
        assert!(
            output.status.success(),
            "kpictl {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON on stdout")
    }

    /// Stops the stack with SIGTERM and checks it drained cleanly.
    fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(killed.success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("stdout");
        let status = self.child.wait().expect("wait for kpictl up");
        assert!(status.success(), "kpictl up exited with {status:?}: {rest}");
    }
}

fn assert_close(value: &Value, expected: f64) {
    let actual = value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{actual} is not {expected}"
    );
}

#[tokio::test]
async fn kpictl_imports_scores_explains_and_reports_as_a_user_would() {
    let db = TestDb::new(DbKind::Postgres)
        .await
        .expect("PostgreSQL database");
    let dir = tempfile::tempdir().expect("temp dir");
    let up = Up::start(&db.url, &dir.path().join("data"));
    // A tenant of its own: the shared Redis may hold other tests' keys.
    let tenant = format!("e2e{}", std::process::id());
    let t = tenant.as_str();

    let applied = up.json(&[
        "catalog",
        "apply",
        "--tenant",
        t,
        "-f",
        &example("catalog.yaml"),
    ]);
    assert_eq!(applied["created"], 4, "{applied}");

    let imported = up.json(&["import", "--tenant", t, &example("month.jsonl")]);
    assert_eq!(imported["accepted"], 15, "{imported}");
    assert_eq!(imported["rejected"], 0, "{imported}");

    let card = up.json(&[
        "scorecard",
        "get",
        "--tenant",
        t,
        "--agent",
        "a1",
        "--period",
        "2026-10",
    ]);
    assert_close(&card["total"], 83.0);
    assert_eq!(card["grade"], "A");
    assert_close(&card["indicators"][0]["contribution"], 55.0);
    assert_close(&card["indicators"][1]["contribution"], 28.0);

    let explain_a2 = [
        "scorecard",
        "explain",
        "--tenant",
        t,
        "--agent",
        "a2",
        "--period",
        "2026-10",
    ];
    let explained = up.json(&explain_a2);
    assert_close(&explained["total"], 26.5);
    assert!(
        explained["vetoes"][0]
            .as_str()
            .is_some_and(|v| v.starts_with("qa_floor")),
        "{explained}"
    );
    let text = up.run(&explain_a2);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("veto: qa_floor"));

    // Scripts can trust the exit code: a bad period is a usage error (2).
    let bad = up.run(&[
        "scorecard",
        "get",
        "--tenant",
        t,
        "--agent",
        "a1",
        "--period",
        "2026-13",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    report(&up, t, dir.path());
    up.stop();
}

/// `kpictl report` for team t1: a page naming both agents, a1's total, the
/// veto and the alert, loading nothing from the network.
fn report(up: &Up, tenant: &str, dir: &Path) {
    let page_path = dir.join("t1.html");
    let output = up.run(&[
        "report",
        "--tenant",
        tenant,
        "--team",
        "t1",
        "--period",
        "2026-10",
        "--periods",
        "3",
        "-o",
        page_path.to_str().expect("UTF-8 path"),
    ]);
    assert!(
        output.status.success(),
        "kpictl report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page = std::fs::read_to_string(&page_path).expect("the report page");
    assert!(page.starts_with("<!DOCTYPE html>"), "{}", &page[..80]);
    for expected in ["Ann", "Bob", "83.0", "26.5", "qa_floor", "csat_low"] {
        assert!(page.contains(expected), "the report lacks {expected}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
}
