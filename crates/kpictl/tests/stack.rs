//! `kpictl up` and `kpictl demo` as processes, on real sockets (port 0, so
//! tests run beside each other and beside a stack on the usual ports), with
//! the credentials they generate.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use kpi_runtime::ServiceKind;
use serde_json::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ANY_PORT: [&str; 6] = [
    "--catalog-addr",
    "127.0.0.1:0",
    "--ingestion-addr",
    "127.0.0.1:0",
    "--scoring-addr",
    "127.0.0.1:0",
];

fn kpictl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpictl"));
    // The embedded default, whatever the environment running the tests.
    command
        .env_remove("KPI_DATABASE_URL")
        .env_remove("KPI_REDIS_URL")
        .env_remove("KPI_INGESTION_URL");
    command
}

fn demo(seed: &str) -> Output {
    kpictl()
        .args(["demo", "--seed", seed, "--output", "json"])
        .args(ANY_PORT)
        .stdin(Stdio::null())
        .output()
        .expect("run kpictl demo")
}

fn report(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "kpictl demo failed: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("demo JSON")
}

#[test]
fn demo_is_deterministic_and_shows_vetoes_and_alerts() {
    // Two runs at once: each has its own temporary data directory and ports.
    let second = std::thread::spawn(|| demo("7"));
    let first = report(&demo("7"));
    let second = report(&second.join().expect("second demo"));
    assert_eq!(
        first, second,
        "the same seed must print the same scorecards"
    );

    let teams = first["teams"].as_array().expect("teams");
    let ids: Vec<&str> = teams.iter().filter_map(|t| t["team"].as_str()).collect();
    assert_eq!(ids, ["ecom", "fin", "aftersales"]);
    let rows: Vec<&Value> = teams
        .iter()
        .flat_map(|t| t["rows"].as_array().expect("rows"))
        .collect();
    assert_eq!(rows.len(), 200);
    let with = |field: &str| {
        rows.iter()
            .filter(|r| r[field].as_array().is_some_and(|a| !a.is_empty()))
            .count()
    };
    assert!(with("vetoes") >= 1, "no veto on any leaderboard");
    assert!(with("alerts") >= 1, "no alert on any leaderboard");
    let cohorts: Vec<&str> = rows.iter().filter_map(|r| r["cohort"].as_str()).collect();
    assert!(cohorts.contains(&"new_hire") && cohorts.contains(&"veteran"));
    for team in teams {
        let ranks: Vec<i64> = team["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|r| r["rank"].as_i64())
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    }

    let explained = &first["explained"];
    assert_eq!(explained["template"], "ecommerce");
    let lines = explained["indicators"].as_array().expect("indicators");
    assert_eq!(lines.len(), 6);
    assert!(
        lines
            .iter()
            .all(|l| l["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
}

/// Reads `up`'s banner until the Ctrl-C hint: the three addresses, and
/// the rest of stdout (kept open: `up` prints again when it stops).
fn addresses(child: &mut Child) -> (Vec<(ServiceKind, String)>, BufReader<ChildStdout>) {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut found = Vec::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).expect("banner line") > 0 {
        let text = std::mem::take(&mut line);
        let line = text.trim_end();
        if line.starts_with("press Ctrl-C") {
            break;
        }
        for kind in ServiceKind::ALL {
            if let Some(rest) = line.strip_prefix(kind.binary_name()) {
                let addr = rest.trim().trim_start_matches("listening on ").to_owned();
                found.push((kind, addr));
            }
        }
    }
    (found, stdout)
}

/// `kpictl up` on free ports with its data in `data`, stdout piped.
fn spawn_up(data: &std::path::Path, stderr: Stdio) -> Child {
    kpictl()
        .arg("up")
        .args(ANY_PORT)
        .arg("--data-dir")
        .arg(data)
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn kpictl up")
}

#[tokio::test]
async fn up_serves_health_on_all_three_and_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_up(data.path(), Stdio::piped());
    let (listening, mut rest) = addresses(&mut child);
    assert_eq!(listening.len(), 3, "{listening:?}");
    for (kind, addr) in &listening {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut health = HealthClient::new(channel);
        let status = health
            .check(HealthCheckRequest {
                service: kind.grpc_service_name().into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{kind}");
    }
    assert!(data.path().join("catalog.db").exists());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let mut farewell = String::new();
    rest.read_to_string(&mut farewell)
        .expect("the rest of stdout");
    let output = child.wait_with_output().expect("wait");
    assert!(farewell.contains("stopped"), "{farewell}");
    assert!(
        output.status.success(),
        "{:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for (_, addr) in &listening {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still accepts connections"
        );
    }
}

/// `kpictl up` never runs open: it writes an owner-only local admin token
/// into its data directory and its services require it.
#[tokio::test]
async fn up_requires_its_generated_token() {
    use kpi_proto::catalog::ListIndicatorsRequest;
    use kpi_proto::catalog::catalog_service_client::CatalogServiceClient;
    use std::os::unix::fs::PermissionsExt;

    let data = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_up(data.path(), Stdio::null());
    let (listening, _rest) = addresses(&mut child);
    let catalog = listening
        .iter()
        .find(|(kind, _)| *kind == ServiceKind::Catalog)
        .map(|(_, addr)| format!("http://{addr}"))
        .expect("catalog address");

    for file in ["token", "api-keys"] {
        let mode = std::fs::metadata(data.path().join(file))
            .expect(file)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let token = std::fs::read_to_string(data.path().join("token")).expect("token");
    let keys = std::fs::read_to_string(data.path().join("api-keys")).expect("keys");
    assert!(
        !keys.contains(token.trim()),
        "the key file holds hashes only"
    );

    let mut client = CatalogServiceClient::connect(catalog)
        .await
        .expect("connect");
    let list = |tenant: &str, token: Option<&str>| {
        let mut request = tonic::Request::new(ListIndicatorsRequest {
            parent: format!("tenants/{tenant}"),
            ..Default::default()
        });
        if let Some(token) = token {
            let value = format!("Bearer {}", token.trim()).parse().expect("ascii");
            request.metadata_mut().insert("authorization", value);
        }
        request
    };
    let code = |r: Result<_, tonic::Status>| r.err().map_or(tonic::Code::Ok, |s| s.code());
    assert_eq!(
        code(client.list_indicators(list("demo", None)).await),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        code(client.list_indicators(list("demo", Some(&token))).await),
        tonic::Code::Ok
    );
    // The local admin token is good for every tenant of this stack.
    assert_eq!(
        code(client.list_indicators(list("acme", Some(&token))).await),
        tonic::Code::Ok
    );
    assert_eq!(
        code(
            client
                .list_indicators(list("demo", Some("kpi_not-the-token")))
                .await
        ),
        tonic::Code::Unauthenticated
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    assert!(child.wait().expect("wait").success());
}
