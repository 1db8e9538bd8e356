//! A private PostgreSQL cluster for fault tests: `initdb` into a temporary
//! directory, `pg_ctl start` on a free loopback port, and stop / start again
//! on the same port and data directory, so a test can take the database
//! away under a running service without touching the shared server.
//!
//! The binaries come from `PATH` or the newest `/usr/lib/postgresql/*/bin`.
//! PostgreSQL refuses to run as root, so as root every command runs as the
//! `postgres` user (`runuser -u postgres --`) on a directory it owns.
//! Authentication is `trust` on loopback; the cluster is removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, bail};

/// How long `pg_ctl` may wait for the server to start or stop (a hang
/// guard: `pg_ctl -w -t`).
const PG_CTL_WAIT_SECS: &str = "60";

/// How a running cluster is stopped (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `fast`: open sessions are terminated (SQLSTATE 57P01), open
    /// transactions rolled back, and the server shuts down cleanly.
    Fast,
    /// `immediate`: every server process is killed at once, like a crash;
    /// the next start recovers from the write-ahead log.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL cluster of one test alone; stopped and deleted on drop.
pub struct PgServer {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PgServer {
    /// Creates a cluster with `initdb` and starts it on a free port.
    pub async fn start() -> anyhow::Result<PgServer> {
        tokio::task::spawn_blocking(Self::start_blocking).await?
    }

    fn start_blocking() -> anyhow::Result<PgServer> {
        let bin = find_bin_dir()?;
        let as_postgres = is_root()?;
        let root = tempfile::Builder::new().prefix("kpi-pg-").tempdir()?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(root.path()))
            .context("cannot hand the cluster directory to the postgres user")?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = PgServer {
            bin,
            root,
            port,
            as_postgres,
            running: false,
        };
        let data = server.data_dir();
        server
            .pg(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            .context("initdb failed")?;
        server.start_again_blocking()?;
        Ok(server)
    }

    /// Its port on 127.0.0.1 (the same after every restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `postgres` database as the `postgres` superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (`pg_ctl stop -m <mode> -w`).
    pub async fn stop(&mut self, mode: StopMode) -> anyhow::Result<()> {
        let data = self.data_dir();
        let (bin, as_postgres) = (self.bin.clone(), self.as_postgres);
        tokio::task::spawn_blocking(move || {
            pg(
                &bin,
                as_postgres,
                "pg_ctl",
                &[
                    "stop",
                    "-D",
                    &data,
                    "-m",
                    mode.as_arg(),
                    "-w",
                    "-t",
                    PG_CTL_WAIT_SECS,
                ],
            )
        })
        .await??;
        self.running = false;
        Ok(())
    }

    /// Starts the stopped server again on the same port and data directory
    /// and waits until it accepts connections.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let data = self.data_dir();
        let log = self.log_file();
        let options = self.server_options();
        let (bin, as_postgres) = (self.bin.clone(), self.as_postgres);
        tokio::task::spawn_blocking(move || {
            start_cluster(&bin, as_postgres, &data, &log, &options)
        })
        .await??;
        self.running = true;
        Ok(())
    }

    fn start_again_blocking(&mut self) -> anyhow::Result<()> {
        start_cluster(
            &self.bin,
            self.as_postgres,
            &self.data_dir(),
            &self.log_file(),
            &self.server_options(),
        )?;
        self.running = true;
        Ok(())
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Loopback only, its own socket directory, and no fsync: the tests
    /// kill server processes, never the machine, so what was written to
    /// the operating system survives and commits stay durable for them.
    fn server_options(&self) -> String {
        format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.root.path().display()
        )
    }

    fn data_dir(&self) -> String {
        self.root.path().join("data").display().to_string()
    }

    fn log_file(&self) -> String {
        self.root.path().join("server.log").display().to_string()
    }

    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        pg(&self.bin, self.as_postgres, program, args)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.pg("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
        }
    }
}

fn start_cluster(
    bin: &Path,
    as_postgres: bool,
    data: &str,
    log: &str,
    options: &str,
) -> anyhow::Result<()> {
    pg(
        bin,
        as_postgres,
        "pg_ctl",
        &[
            "start",
            "-D",
            data,
            "-l",
            log,
            "-o",
            options,
            "-w",
            "-t",
            PG_CTL_WAIT_SECS,
        ],
    )
    .with_context(|| {
        format!(
            "pg_ctl start failed; server log: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })?;
    Ok(())
}

/// Runs a PostgreSQL program from `bin`, as `postgres` when `as_postgres`.
fn pg(bin: &Path, as_postgres: bool, program: &str, args: &[&str]) -> anyhow::Result<Output> {
    let program = bin.join(program);
    let mut command = if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&program);
        command
    } else {
        Command::new(&program)
    };
    // The postgres user may not be allowed into the test's directory.
    command
        .args(args)
        .env_remove("PGDATA")
        .current_dir(std::env::temp_dir());
    run(&mut command).with_context(|| format!("{} {}", program.display(), args.join(" ")))
}

/// Runs `command` to completion; an error carries its output.
fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    if !output.status.success() {
        bail!(
            "exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

fn is_root() -> anyhow::Result<bool> {
    let output = run(Command::new("id").arg("-u"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// The directory holding `initdb` and `pg_ctl`: from `PATH`, else the
/// newest `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no initdb on PATH and no /usr/lib/postgresql")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no /usr/lib/postgresql/*/bin/initdb found")
}
