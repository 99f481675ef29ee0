//! Test support: a fresh database per test on the server named by
//! `HAPPENING_TEST_DATABASE_URL` (the test script starts one; see scripts/test).

use sqlx::{Connection, PgConnection};

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
    let name = format!("happening_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(url).await.expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create the test database");
    let (base, _) = url.rsplit_once('/').expect("a database URL ends in /<database>");
    let db_url = format!("{base}/{name}");
    crate::connect(&db_url, 1).await.expect("migrate the test database").close().await;
    db_url
}
