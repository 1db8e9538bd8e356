//! Integration tests of `kpi-cache`: the in-process backend, key isolation,
//! single flight, and the Redis backend against a real `redis-server` that
//! each Redis test starts for itself on a free port with
//! `kpi_testkit::RedisServer` (stopped, paused and flushed while in use).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kpi_cache::board;
use kpi_cache::{Cache, CacheConfig, CacheKey, VersionBoard};
use kpi_testkit::RedisServer;

/// Upper bound for a call that must not hang; far above what any call should
/// take, so it only catches multi-second stalls, not slow machines.
const HANG_GUARD: Duration = Duration::from_secs(5);
/// Upper bound for polling loops.
const POLL_BOUND: Duration = Duration::from_secs(15);
const POLL_EVERY: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// helpers

fn scorecard_key(tenant: &str, subject: &str) -> CacheKey {
    CacheKey::new(
        tenant,
        "scorecard",
        [subject, "2026-W14", "agent-weekly@3", "w1024"],
    )
}

fn unique_prefix(test: &str) -> String {
    format!("kpitest:{test}:{}", std::process::id())
}

fn memory_cache(test: &str) -> Cache {
    Cache::new(CacheConfig {
        prefix: unique_prefix(test),
        ..CacheConfig::default()
    })
    .expect("memory cache")
}

fn redis_cache(server: &RedisServer, test: &str) -> Cache {
    redis_cache_with(server.url(), test, Duration::from_millis(500))
}

fn redis_cache_with(url: String, test: &str, op_timeout: Duration) -> Cache {
    let cache = Cache::new(CacheConfig {
        redis_url: Some(url),
        prefix: unique_prefix(test),
        ttl: Duration::from_secs(60),
        op_timeout,
        breaker_cooldown: Duration::from_millis(200),
        ..CacheConfig::default()
    })
    .expect("redis cache");
    assert_eq!(cache.backend(), "redis");
    cache
}

/// The value a "computation from source" gives for `key`: deterministic, so a
/// test can tell a right value from a stale or mixed-up one.
fn source_value(key: &CacheKey) -> Vec<u8> {
    format!("scorecard of {}", key.render("src")).into_bytes()
}

/// Calls `get_or_compute` with a computation that counts its runs.
async fn fetch(cache: &Cache, key: &CacheKey, runs: &AtomicUsize) -> Result<Arc<Vec<u8>>, String> {
    cache
        .get_or_compute(key, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(source_value(key))
        })
        .await
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Log output captured from the current thread.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures what is logged on this thread until the guard is dropped.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn poll_until<Fut: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> Fut) {
    let deadline = Instant::now() + POLL_BOUND;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

// ---------------------------------------------------------------------------
// in-process backend

#[tokio::test]
async fn memory_hit_then_miss_counts() {
    let cache = memory_cache("memory_hit");
    assert_eq!(cache.backend(), "memory");
    let key = scorecard_key("acme", "agent-1");
    let runs = AtomicUsize::new(0);

    assert_eq!(cache.get(&key).await, None);
    let first = fetch(&cache, &key, &runs).await.expect("first");
    let second = fetch(&cache, &key, &runs).await.expect("second");
    assert_eq!(*first, source_value(&key));
    assert_eq!(second, first);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get(&key).await, Some(first));

    let stats = cache.stats();
    assert_eq!(stats.computations, 1);
    assert_eq!(stats.hits, 2);
    assert_eq!(stats.misses, 2);
    assert_eq!(stats.errors, 0);
}

#[tokio::test]
async fn memory_ttl_expires() {
    let cache = Cache::new(CacheConfig {
        prefix: unique_prefix("memory_ttl"),
        ttl: Duration::from_millis(100),
        ..CacheConfig::default()
    })
    .expect("cache");
    let key = scorecard_key("acme", "agent-1");
    let runs = AtomicUsize::new(0);
    fetch(&cache, &key, &runs).await.expect("compute");
    assert!(cache.get(&key).await.is_some());
    poll_until("entry expires", || async {
        cache.get(&key).await.is_none()
    })
    .await;
    let again = fetch(&cache, &key, &runs).await.expect("recompute");
    assert_eq!(*again, source_value(&key));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn memory_capacity_is_bounded() {
    let cache = Cache::new(CacheConfig {
        prefix: unique_prefix("memory_capacity"),
        memory_capacity: 3,
        ..CacheConfig::default()
    })
    .expect("cache");
    let keys: Vec<CacheKey> = (0..10)
        .map(|i| scorecard_key("acme", &format!("agent-{i}")))
        .collect();
    for key in &keys {
        cache.put(key, source_value(key)).await;
    }
    let mut held = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(value) = cache.get(key).await {
            assert_eq!(*value, source_value(key));
            held.push(i);
        }
    }
    assert_eq!(held, vec![7, 8, 9], "the three newest stay");
}

#[tokio::test]
async fn keys_differing_in_any_part_never_collide() {
    let base = || scorecard_key("acme", "agent-1");
    let mut keys = vec![base()];
    let mut k = base();
    k.tenant = "globex".into();
    keys.push(k);
    let mut k = base();
    k.kind = "team_scorecard";
    keys.push(k);
    for i in 0..4 {
        let mut k = base();
        k.parts[i].push('x');
        keys.push(k);
    }
    // Separators inside parts must not shift part boundaries.
    keys.push(CacheKey::new(
        "acme",
        "scorecard",
        ["agent-1:2026-W14", "agent-weekly@3", "w1024"],
    ));
    keys.push(CacheKey::new(
        "acme:agent-1",
        "scorecard",
        ["2026-W14", "agent-weekly@3", "w1024"],
    ));
    keys.push(CacheKey::new(
        "acme}",
        "scorecard",
        ["{agent-1", "2026-W14", "agent-weekly@3", "w1024"],
    ));
    let mut longer = base();
    longer.parts.push(String::new());
    keys.push(longer);

    let rendered: std::collections::HashSet<String> =
        keys.iter().map(|k| k.render("kpi:v2")).collect();
    assert_eq!(
        rendered.len(),
        keys.len(),
        "renderings are distinct: {rendered:?}"
    );

    let cache = memory_cache("collide");
    for key in &keys {
        cache.put(key, source_value(key)).await;
    }
    for key in &keys {
        assert_eq!(cache.get(key).await.as_deref(), Some(&source_value(key)));
    }
}

// ---------------------------------------------------------------------------
// single flight

async fn single_flight_computes_once(cache: Cache) {
    let key = scorecard_key("acme", "agent-sf");
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (cache, key, runs) = (cache.clone(), key.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_compute(&key, || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await; // the work
                    Ok::<_, String>(source_value(&key))
                })
                .await
        }));
    }
    for task in tasks {
        let value = task.await.expect("task").expect("value");
        assert_eq!(*value, source_value(&key));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().computations, 1);
    assert_eq!(cache.in_flight(), 0, "the flight map is emptied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_memory() {
    single_flight_computes_once(memory_cache("single_flight")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_redis() {
    let server = RedisServer::start().await.expect("redis-server");
    single_flight_computes_once(redis_cache(&server, "single_flight_redis")).await;
}

#[tokio::test]
async fn errors_reach_every_waiter_and_are_not_cached() {
    let cache = memory_cache("errors");
    let key = scorecard_key("acme", "agent-err");
    let runs = AtomicUsize::new(0);
    // Polled together on one task: every call joins before the first ends.
    let calls = (0..10).map(|_| {
        cache.get_or_compute(&key, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err::<Vec<u8>, _>("source unavailable".to_owned())
        })
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result, Err("source unavailable".to_owned()));
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "one computation for all ten"
    );
    assert_eq!(cache.stats().coalesced, 9);
    assert_eq!(cache.in_flight(), 0);
    assert_eq!(cache.get(&key).await, None, "an error is not cached");

    let value = fetch(&cache, &key, &runs).await.expect("source is back");
    assert_eq!(*value, source_value(&key));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_computation_hands_over() {
    let cache = memory_cache("cancel");
    let key = scorecard_key("acme", "agent-cancel");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (cache, key) = (cache.clone(), key.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute(&key, || async move {
                    let _ = started_tx.send(());
                    std::future::pending::<Result<Vec<u8>, String>>().await
                })
                .await
        })
    };
    started_rx.await.expect("leader started");
    let follower = {
        let (cache, key) = (cache.clone(), key.clone());
        tokio::spawn(async move {
            let runs = AtomicUsize::new(0);
            fetch(&cache, &key, &runs).await
        })
    };
    leader.abort();
    let value = tokio::time::timeout(HANG_GUARD, follower)
        .await
        .expect("follower not stuck")
        .expect("task")
        .expect("value");
    assert_eq!(*value, source_value(&key));
    assert_eq!(cache.in_flight(), 0);
}

// ---------------------------------------------------------------------------
// configuration

#[tokio::test]
async fn bad_url_is_an_error_and_unreachable_redis_does_not_block() {
    let bad = Cache::new(CacheConfig {
        redis_url: Some("not a url".into()),
        ..CacheConfig::default()
    });
    assert!(bad.is_err());

    // Nothing listens on this port: building is instant, calls fall through.
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let started = Instant::now();
    let cache = redis_cache_with(url, "unreachable", Duration::from_millis(50));
    let key = scorecard_key("acme", "agent-1");
    let runs = AtomicUsize::new(0);
    for _ in 0..3 {
        let value = fetch(&cache, &key, &runs).await.expect("computed");
        assert_eq!(*value, source_value(&key));
    }
    assert!(
        started.elapsed() < HANG_GUARD,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(cache.stats().errors >= 1);
}

// ---------------------------------------------------------------------------
// Redis backend

#[tokio::test]
async fn redis_round_trip_is_shared_between_instances() {
    let server = RedisServer::start().await.expect("redis-server");
    let writer = redis_cache(&server, "round_trip");
    let reader = redis_cache(&server, "round_trip");
    let key = scorecard_key("acme", "agent-1");
    let runs = AtomicUsize::new(0);

    let value = fetch(&writer, &key, &runs).await.expect("computed");
    assert_eq!(*value, source_value(&key));
    assert_eq!(reader.get(&key).await, Some(value.clone()));
    let again = fetch(&reader, &key, &runs).await.expect("cached");
    assert_eq!(again, value);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the second instance did not recompute"
    );

    // Stored under the rendered key, with the TTL.
    let rendered = key.render(&unique_prefix("round_trip"));
    let pttl: i64 = server
        .command(redis::cmd("PTTL").arg(&rendered))
        .await
        .expect("redis command");
    assert!(pttl > 0 && pttl <= 60_000, "pttl {pttl}");
    assert_eq!(writer.stats().errors, 0);
    assert_eq!(reader.stats().errors, 0);
}

#[tokio::test]
async fn redis_stopped_computes_from_source() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let mut server = RedisServer::start().await.expect("redis-server");
    let cache = redis_cache_with(server.url(), "stopped", Duration::from_millis(250));
    let cached = scorecard_key("acme", "agent-1");
    let fresh = scorecard_key("acme", "agent-2");
    let runs = AtomicUsize::new(0);
    fetch(&cache, &cached, &runs).await.expect("warm");
    assert_eq!(cache.stats().errors, 0);

    server.stop();

    let started = Instant::now();
    for key in [&fresh, &cached, &fresh] {
        let value = fetch(&cache, key, &runs)
            .await
            .expect("computed from source");
        assert_eq!(*value, source_value(key));
    }
    assert!(
        started.elapsed() < HANG_GUARD,
        "took {:?}",
        started.elapsed()
    );
    assert!(cache.stats().errors >= 1);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    let logs = logs.text();
    assert_eq!(
        logs.matches(" WARN ").count(),
        1,
        "one warning for the outage: {logs}"
    );
    assert!(logs.contains("redis cache failed"), "{logs}");
}

#[tokio::test]
async fn redis_paused_computes_from_source_then_recovers() {
    let server = RedisServer::start().await.expect("redis-server");
    let cache = redis_cache_with(server.url(), "paused", Duration::from_millis(250));
    let runs = AtomicUsize::new(0);
    let warm = scorecard_key("acme", "agent-1");
    fetch(&cache, &warm, &runs).await.expect("warm");
    assert_eq!(cache.stats().errors, 0);

    server.pause().expect("SIGSTOP");
    let started = Instant::now();
    for key in [scorecard_key("acme", "agent-2"), warm.clone()] {
        let value = fetch(&cache, &key, &runs)
            .await
            .expect("computed from source");
        assert_eq!(*value, source_value(&key));
    }
    assert!(
        started.elapsed() < HANG_GUARD,
        "took {:?}",
        started.elapsed()
    );
    assert!(cache.stats().errors >= 1);
    server.resume().expect("SIGCONT");

    // Once the breaker has cooled down, values are stored in Redis again.
    let mut n = 0;
    let prefix = unique_prefix("paused");
    poll_until("values cached in redis again", || {
        n += 1;
        let key = scorecard_key("acme", &format!("after-{n}"));
        let (cache, server, runs, prefix) = (&cache, &server, &runs, &prefix);
        async move {
            let value = fetch(cache, &key, runs).await.expect("value");
            assert_eq!(*value, source_value(&key));
            let stored: Option<Vec<u8>> = server
                .command(redis::cmd("GET").arg(key.render(prefix)))
                .await
                .expect("redis command");
            stored.as_deref() == Some(source_value(&key).as_slice())
        }
    })
    .await;

    // And read back from there, right, after the late answers of the paused
    // period were drained.
    let key = scorecard_key("acme", &format!("after-{n}"));
    assert_eq!(cache.get(&key).await.as_deref(), Some(&source_value(&key)));
    let value = fetch(&cache, &warm, &runs).await.expect("warm again");
    assert_eq!(*value, source_value(&warm));
}

#[tokio::test]
async fn redis_flushed_recomputes() {
    let server = RedisServer::start().await.expect("redis-server");
    let cache = redis_cache(&server, "flushed");
    let key = scorecard_key("acme", "agent-1");
    let runs = AtomicUsize::new(0);
    fetch(&cache, &key, &runs).await.expect("computed");
    fetch(&cache, &key, &runs).await.expect("cached");
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let () = server
        .command(&redis::cmd("FLUSHALL"))
        .await
        .expect("redis command");

    let value = fetch(&cache, &key, &runs).await.expect("recomputed");
    assert_eq!(*value, source_value(&key));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().errors, 0, "a flush is a miss, not an error");
    assert_eq!(cache.get(&key).await.as_deref(), Some(&source_value(&key)));
}

#[tokio::test]
async fn redis_garbage_computes_from_source() {
    let server = RedisServer::start().await.expect("redis-server");
    let cache = redis_cache(&server, "garbage");
    let key = scorecard_key("acme", "agent-1");
    // A list where a string is expected: GET answers WRONGTYPE.
    let _: i64 = server
        .command(
            redis::cmd("LPUSH")
                .arg(key.render(&unique_prefix("garbage")))
                .arg("x"),
        )
        .await
        .expect("redis command");
    let runs = AtomicUsize::new(0);
    let value = fetch(&cache, &key, &runs)
        .await
        .expect("computed from source");
    assert_eq!(*value, source_value(&key));
    assert!(cache.stats().errors >= 1);
}

// ---------------------------------------------------------------------------
// Values kept in process in front of Redis

fn front_cache(server: &RedisServer, test: &str) -> Cache {
    Cache::new(CacheConfig {
        redis_url: Some(server.url()),
        prefix: unique_prefix(test),
        ttl: Duration::from_secs(60),
        op_timeout: Duration::from_millis(250),
        breaker_cooldown: Duration::from_millis(200),
        memory_in_front: true,
        ..CacheConfig::default()
    })
    .expect("redis cache with a memory front")
}

#[tokio::test]
async fn front_serves_hits_without_redis_and_fills_from_redis() {
    let mut server = RedisServer::start().await.expect("redis-server");
    let writer = front_cache(&server, "front");
    let reader = front_cache(&server, "front");
    let key = scorecard_key("acme", "agent-1");
    let runs = AtomicUsize::new(0);
    fetch(&writer, &key, &runs).await.expect("computed");
    // Another instance finds it in Redis and keeps it in process.
    let found = fetch(&reader, &key, &runs).await.expect("from redis");
    assert_eq!(*found, source_value(&key));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Flushed or stopped, Redis is not needed for what is held in process.
    let () = server
        .command(&redis::cmd("FLUSHALL"))
        .await
        .expect("redis command");
    server.stop();
    for cache in [&writer, &reader] {
        let value = fetch(cache, &key, &runs).await.expect("held in process");
        assert_eq!(*value, source_value(&key));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "nothing was recomputed");
    assert_eq!(writer.stats().errors + reader.stats().errors, 0);

    // A key not held anywhere is computed from source, Redis down or not.
    let fresh = scorecard_key("acme", "agent-2");
    let value = fetch(&reader, &fresh, &runs).await.expect("computed");
    assert_eq!(*value, source_value(&fresh));
    assert!(reader.stats().errors >= 1);
}

#[tokio::test]
async fn put_many_reaches_redis_in_batches() {
    let server = RedisServer::start().await.expect("redis-server");
    let writer = redis_cache(&server, "put_many");
    let reader = redis_cache(&server, "put_many");
    let keys: Vec<CacheKey> = (0..250)
        .map(|i| scorecard_key("acme", &format!("agent-{i}")))
        .collect();
    writer
        .put_many(keys.iter().map(|k| (k.clone(), source_value(k))).collect())
        .await;
    for key in &keys {
        assert_eq!(reader.get(key).await.as_deref(), Some(&source_value(key)));
    }
    let ttl: i64 = server
        .command(redis::cmd("PTTL").arg(keys[249].render(&unique_prefix("put_many"))))
        .await
        .expect("redis command");
    assert!(ttl > 0 && ttl <= 60_000, "pttl {ttl}");
    assert_eq!(writer.stats().errors, 0);
}

// ---------------------------------------------------------------------------
// the version board

/// A board (with its own connection and breaker) under `prefix`.
fn board(server: &RedisServer, prefix: &str) -> VersionBoard {
    VersionBoard::new(&server.url(), prefix, Duration::from_millis(200)).expect("board")
}

/// A board read that must answer (Redis is up).
async fn read_board(board: &VersionBoard, tenant: &str) -> board::Posted {
    board.read(tenant).await.expect("redis answers")
}

/// A ticket that must be given (Redis is up).
async fn ticket(board: &VersionBoard, tenant: &str) -> board::Ticket {
    board.ticket(tenant).await.expect("redis answers")
}

#[tokio::test]
async fn board_holds_what_was_read_under_a_ticket_until_a_write_clears_it() {
    let server = RedisServer::start().await.expect("redis-server");
    let prefix = unique_prefix("board");
    let (reader, writer) = (board(&server, &prefix), board(&server, &prefix));

    let empty = read_board(&reader, "acme").await;
    assert_eq!(empty.value, None);
    let first = ticket(&reader, "acme").await;
    assert!(reader.post("acme", &first, "7:42:").await);
    let posted = read_board(&reader, "acme").await;
    assert_eq!(posted.value.as_deref(), Some("7:42:"));
    assert!(
        posted.remaining > Duration::ZERO && posted.remaining <= board::LEASE,
        "{:?} left",
        posted.remaining
    );
    // Another tenant's board is its own.
    assert_eq!(read_board(&reader, "other").await.value, None);

    // A write clears it; a post under a ticket taken before the write (its
    // source read may predate the commit) is refused.
    assert!(writer.try_clear("acme").await);
    assert_eq!(read_board(&reader, "acme").await.value, None);
    assert!(!reader.post("acme", &first, "7:42:").await);
    assert_eq!(read_board(&reader, "acme").await.value, None);
    // A ticket taken after the write may post.
    let after = ticket(&reader, "acme").await;
    assert!(reader.post("acme", &after, "7:43:").await);
    assert_eq!(
        read_board(&reader, "acme").await.value.as_deref(),
        Some("7:43:")
    );
}

#[tokio::test]
async fn board_values_lapse_with_the_lease_of_their_ticket() {
    let server = RedisServer::start().await.expect("redis-server");
    let reader = board(&server, &unique_prefix("lease"));
    let taken = ticket(&reader, "acme").await;
    assert!(reader.post("acme", &taken, "1:1:").await);
    tokio::time::sleep(board::LEASE).await;
    // Expired by Redis's clock, counted from the ticket, not from the post.
    assert_eq!(read_board(&reader, "acme").await.value, None);
    // A post arriving after its ticket's lease (a hung Redis, a slow
    // reader) is refused rather than trusted for another lease.
    assert!(!reader.post("acme", &taken, "1:1:").await);
    assert_eq!(read_board(&reader, "acme").await.value, None);
}

#[tokio::test]
async fn a_flushed_board_refuses_tickets_from_before_the_flush() {
    let server = RedisServer::start().await.expect("redis-server");
    let reader = board(&server, &unique_prefix("flush"));
    let before = ticket(&reader, "acme").await;
    server.flush().await.expect("FLUSHALL");
    // The fence went with the flush; the next ticket makes a new one.
    let after = ticket(&reader, "acme").await;
    assert!(!reader.post("acme", &before, "1:1:").await);
    assert!(reader.post("acme", &after, "1:2:").await);
    assert_eq!(
        read_board(&reader, "acme").await.value.as_deref(),
        Some("1:2:")
    );
}

#[tokio::test]
async fn a_writer_that_cannot_clear_the_board_waits_out_the_lease() {
    let mut server = RedisServer::start().await.expect("redis-server");
    let writer = board(&server, &unique_prefix("outage"));
    assert!(writer.try_clear("acme").await);
    server.stop();
    assert!(!writer.try_clear("acme").await);
    // Whatever a reader posted before the write has lapsed by the time the
    // write is acknowledged.
    let started = Instant::now();
    writer.clear("acme").await;
    assert!(
        started.elapsed() >= board::LEASE,
        "acknowledged after {:?}, before the lease ran out",
        started.elapsed()
    );
    assert!(board::WAIT_OUT > board::LEASE);
    // And a reader finds no board: it reads from source.
    assert_eq!(writer.read("acme").await, None);
    assert_eq!(writer.ticket("acme").await, None);
}

#[tokio::test]
async fn a_paused_board_answers_nothing_and_its_queued_posts_lapse() {
    let server = RedisServer::start().await.expect("redis-server");
    let prefix = unique_prefix("paused");
    let (reader, late) = (board(&server, &prefix), board(&server, &prefix));
    let taken = ticket(&reader, "acme").await;
    // Connected before the pause, so its post reaches the hung server.
    read_board(&late, "acme").await;
    server.pause().expect("SIGSTOP");
    // Bounded by the operation timeout, not by the pause.
    assert_eq!(reader.read("acme").await, None);
    // This post times out but stays queued in the hung Redis.
    assert!(!late.post("acme", &taken, "1:1:").await);
    // Held past the ticket's lease, then resumed: the queued post runs
    // and is refused.
    tokio::time::sleep(board::LEASE).await;
    server.resume().expect("SIGCONT");
    // The breaker skips Redis for its cool-down after the failure.
    poll_until("the board answers again", || async {
        reader.read("acme").await.is_some()
    })
    .await;
    assert_eq!(read_board(&reader, "acme").await.value, None);
}

#[tokio::test]
async fn a_board_value_that_is_not_a_posting_reads_as_nothing() {
    let server = RedisServer::start().await.expect("redis-server");
    let prefix = unique_prefix("garbage");
    let reader = board(&server, &prefix);
    let key = CacheKey::new("acme", "versions", Vec::<String>::new()).render(&prefix);
    for garbage in ["", "no lease", "12x:1:1:", "1800000000000:"] {
        let _: () = server
            .command(redis::cmd("SET").arg(&key).arg(garbage))
            .await
            .expect("SET");
        assert_eq!(read_board(&reader, "acme").await.value, None, "{garbage:?}");
    }
    // The same key holding a posting reads as one (the key is the board's).
    let _: () = server
        .command(redis::cmd("SET").arg(&key).arg("1800000000000:7:1:"))
        .await
        .expect("SET");
    assert_eq!(
        read_board(&reader, "acme").await.value.as_deref(),
        Some("7:1:")
    );
}
