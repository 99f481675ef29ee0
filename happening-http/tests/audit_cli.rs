//! `happening audit`, the built binary, against a fresh PostgreSQL database: clean -> exit 0;
//! after a raw-SQL corruption -> exit 1 with the breach printed; stores that cannot be read
//! -> exit 2. The audit writes nothing, not even the migrations.

use std::process::{Command, Output};
use std::sync::Arc;

use happening_core::domain::NewEvent;
use happening_core::ids::{EventId, UserId};
use happening_core::ports::Store;
use happening_core::{BookRequest, Engine};
use happening_postgres::{testing, PgAdmission, PgStore};
use sqlx::{Connection, PgConnection, PgPool};

fn run(db_url: &str, args: &[&str]) -> (i32, String, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_happening"))
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", db_url)
        .env_remove("REDIS_URL")
        .env_remove("HAPPENING_REDIS_PREFIX")
        .output()
        .expect("run happening audit");
    let (out, err) = (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned());
    (status.code().expect("exit code"), out, err)
}

async fn event(engine: &Engine, capacity: u32) -> EventId {
    let admin = engine.upsert_user(&format!("admin-{}", UserId::new()), None, None).await.unwrap();
    let org = engine.create_org(admin.id, "Audit").await.unwrap();
    let new = NewEvent::new(org.id, "Audit", chrono::Utc::now(), capacity);
    engine.create_event(new).await.unwrap().event.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_is_0_when_clean_1_on_breaches_2_when_unreadable() {
    let Some(server) = testing::server_url() else { return };
    let db = testing::fresh_database_url(&server).await;
    let pool = PgPool::connect(&db).await.unwrap();
    let engine = Engine::new(Arc::new(PgStore::new(pool.clone())) as Arc<dyn Store>, Arc::new(PgAdmission::new(pool.clone())));

    let (code, out, err) = run(&db, &[]);
    assert_eq!(code, 0, "empty database: {out}{err}");
    assert!(out.contains("audited 0 event(s), 0 booking(s)"), "{out}");

    let a = event(&engine, 4).await;
    let b = event(&engine, 4).await;
    let user = UserId::new();
    engine.book(BookRequest { event_id: a, user_id: user, seat_numbers: Some(vec![1]), ..Default::default() }).await.unwrap();
    let second = engine.book(BookRequest { event_id: a, user_id: user, seat_numbers: Some(vec![2]), ..Default::default() }).await.unwrap();
    let other = engine.book(BookRequest { event_id: b, user_id: user, seats: Some(1), ..Default::default() }).await.unwrap();
    let (code, out, err) = run(&db, &[]);
    assert_eq!(code, 0, "clean: {out}{err}");
    assert!(out.contains("audited 2 event(s), 3 booking(s), 3 pending notification(s): 0 breach(es)"), "{out}");

    // A seat owned twice.
    sqlx::query("UPDATE bookings SET seat_numbers = '{1}' WHERE id = $1").bind(second.id.0).execute(&pool).await.unwrap();
    let (code, out, err) = run(&db, &[]);
    assert_eq!(code, 1, "corrupted: {out}{err}");
    assert!(out.contains(&format!("breach: seat_twice event {a}: seat 1 owned by bookings")), "{out}");
    assert!(out.lines().last().unwrap().ends_with("breach(es)") && !out.contains(" 0 breach(es)"), "{out}");
    // Only the other event: clean.
    let (code, out, _) = run(&db, &["--event", &b.to_string()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audited 1 event(s), 1 booking(s)"), "{out}");

    // A notification of the other event pending for an hour: stuck after 300 s, not after 2 h.
    sqlx::query("UPDATE notifications SET created_at = created_at - interval '1 hour' WHERE booking_id = $1")
        .bind(other.id.0)
        .execute(&pool)
        .await
        .unwrap();
    let (code, out, _) = run(&db, &["--event", &b.to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("breach: outbox_stuck event {b}: notification")), "{out}");
    let (code, out, _) = run(&db, &["--event", &b.to_string(), "--stuck-after-secs", "7200"]);
    assert_eq!(code, 0, "{out}");

    // The audit wrote nothing: the corruption is still there, the notifications still pending.
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").fetch_one(&pool).await.unwrap();
    assert_eq!(pending, 3);
    pool.close().await;

    // Stores that cannot be read: a database without the schema (not migrated by the
    // audit), an unknown event, a server that does not answer, no URL at all.
    let bare = testing::empty_database_url(&server).await;
    let (code, out, err) = run(&bare, &[]);
    assert_eq!(code, 2, "no schema: {out}{err}");
    assert!(err.contains("cannot audit"), "{err}");
    let mut conn = PgConnection::connect(&bare).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(tables, 0, "the audit created tables");

    let (code, _, err) = run(&db, &["--event", &EventId::new().to_string()]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run("postgres://happening@127.0.0.1:1/none", &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run("", &[]);
    assert_eq!(code, 2, "{err}");
}
