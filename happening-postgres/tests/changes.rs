//! `PgChanges`: changes told across engines with LISTEN/NOTIFY, against a real PostgreSQL.
//! Two feeds on one database stand for two servers.

use std::time::Duration;

use happening_core::ids::EventId;
use happening_core::ports::{ChangeFeed, Heard};
use happening_postgres::{testing, PgChanges, CHANGES_APPLICATION_NAME};

/// Long enough for any notification on loopback; only bounds a hang.
const WAIT: Duration = Duration::from_secs(20);

async fn next(feed: &PgChanges) -> Heard {
    tokio::time::timeout(WAIT, feed.next()).await.expect("nothing heard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_published_by_one_is_heard_by_the_other_and_a_lost_listener_resyncs() {
    let Some(server) = testing::server_url() else { return };
    let db = testing::fresh_database_url(&server).await;
    let pool = happening_postgres::connect(&db, testing::pool(2)).await.unwrap();
    let (a, b) = (PgChanges::new(&db, pool.clone()).unwrap(), PgChanges::new(&db, pool.clone()).unwrap());
    // The first `next` opens the listener, and says so.
    let listening = tokio::spawn(async move {
        assert_eq!(next(&b).await, Heard::Resync, "listening");
        b
    });
    // Published before b listens: lost, as notifications are (b's Resync covers it).
    let b = loop {
        a.publish(&[EventId::new()]).await.unwrap();
        if listening.is_finished() {
            break listening.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let events: Vec<EventId> = (0..200).map(|_| EventId::new()).collect();
    a.publish(&events).await.unwrap();
    // 200 ids are two notifications (a payload holds 150); a's own are not heard by a.
    let mut heard = Vec::new();
    while heard.len() < events.len() {
        match next(&b).await {
            Heard::Changed(ids) => heard.extend(ids),
            // Stragglers of the loop above.
            Heard::Resync => panic!("resync without a loss"),
        }
        heard.retain(|e| events.contains(e));
    }
    assert_eq!(heard, events);

    // The listening session ended by the server: b listens again and says so, then hears.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(CHANGES_APPLICATION_NAME)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(killed, [true], "one listening session");
    assert_eq!(next(&b).await, Heard::Resync);
    let e = EventId::new();
    a.publish(&[e]).await.unwrap();
    assert_eq!(next(&b).await, Heard::Changed(vec![e]));
    // Its own are never heard.
    b.publish(&[EventId::new()]).await.unwrap();
    a.publish(&[e]).await.unwrap();
    assert_eq!(next(&b).await, Heard::Changed(vec![e]));
}
