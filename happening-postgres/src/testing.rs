//! Test support: a fresh database per test on the server named by
//! `HAPPENING_TEST_DATABASE_URL` (the test script starts one; see scripts/test).

use sqlx::{Connection, PgConnection};

use crate::PoolConfig;

/// A test pool of `connections_max`: its wait for a connection is long, since a test must
/// not fail on timing. Tests race hundreds of tasks on a few connections of a shared, noisy
/// machine, where the server's 5 s wait was once exceeded while every invariant held.
pub fn pool(connections_max: u32) -> PoolConfig {
    PoolConfig { connections_max, acquire_timeout_ms: 300_000 }
}

/// The test server's URL. Without one, tests skip, except under CI (`CI` set), where a
/// missing server is a failure.
pub fn server_url() -> Option<String> {
    match std::env::var("HAPPENING_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("HAPPENING_TEST_DATABASE_URL is not set, and CI is: run the tests with scripts/test")
        }
        _ => {
            eprintln!("skipped: HAPPENING_TEST_DATABASE_URL is not set (scripts/test starts PostgreSQL)");
            None
        }
    }
}

/// Creates a new database on the server at `url`, migrates it, and returns its URL.
pub async fn fresh_database_url(url: &str) -> String {
    let db_url = empty_database_url(url).await;
    crate::connect(&db_url, pool(1)).await.expect("migrate the test database").close().await;
    db_url
}

/// Creates a new database without the schema (for tests of migration itself).
///
/// Databases are named `happening_test_<pid>_<uuid>`. The first call of each process drops
/// those left by processes that have ended: a full run creates hundreds, several MB each, and
/// a test may not live to drop its own (a panic, a killed run).
pub async fn empty_database_url(url: &str) -> String {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let mut admin = PgConnection::connect(url).await.expect("connect to the test server");
    SWEPT.get_or_init(|| drop_ended(&mut admin)).await;
    let name = format!("happening_test_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create the test database");
    let (base, _) = url.rsplit_once('/').expect("a database URL ends in /<database>");
    format!("{base}/{name}")
}

/// Drops the test databases whose creating process has ended (Linux: no `/proc/<pid>`).
/// Elsewhere it drops nothing, since it cannot tell whether their tests still run.
async fn drop_ended(admin: &mut PgConnection) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(r"SELECT datname FROM pg_database WHERE datname LIKE 'happening\_test\_%'")
        .fetch_all(&mut *admin)
        .await
        .expect("list the test databases");
    for name in names {
        let pid = name.strip_prefix("happening_test_").and_then(|rest| rest.split('_').next()).and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Best effort: another process may be sweeping the same one.
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut *admin).await;
    }
}

/// The shared buffers (hit and read) a statement used, from the lines of its `EXPLAIN
/// (ANALYZE, BUFFERS)`: the first "Buffers:" line is the whole statement's, the reads of
/// functions it calls included.
#[cfg(test)]
pub(crate) fn plan_buffers(plan: &[String]) -> u64 {
    let total = plan.iter().find(|l| l.trim_start().starts_with("Buffers: shared")).expect("buffers in the plan");
    let count =
        |what: &str| -> u64 { total.split_whitespace().find_map(|w| w.strip_prefix(what)).map_or(0, |n| n.parse().expect("a count")) };
    count("hit=") + count("read=")
}

/// The shared buffers statement `sql`, of one parameter `id`, used (`plan_buffers`), with its
/// plan to print.
#[cfg(test)]
pub(crate) async fn buffers_of(pool: &sqlx::PgPool, sql: &str, id: uuid::Uuid) -> (u64, String) {
    let plan: Vec<String> = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("explain {sql}: {e}"))
        .iter()
        .map(|r| sqlx::Row::get(r, 0))
        .collect();
    (plan_buffers(&plan), plan.join("\n"))
}
