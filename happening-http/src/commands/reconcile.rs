//! `happening reconcile [--event ID]`: the admission's counters and waitlists rebuilt from
//! the store.

use std::process::ExitCode;

use happening_core::Reconciled;

use super::runtime;
use crate::cli::{LogFormat, Reconcile};
use crate::logs;
use crate::wiring::pg_engine;

/// One line for an event that had drifted.
fn describe(r: &Reconciled) -> String {
    let before = r.free_before.map_or_else(|| "missing".to_string(), |n| n.to_string());
    format!(
        "event {}: free seats {} -> {}, waitlist repaired: {}, waiting: {}, promoted: {}",
        r.event_id,
        before,
        r.free_after,
        if r.waitlist_repaired { "yes" } else { "no" },
        r.waiting,
        r.promoted
    )
}

/// Exit 0 when every event is consistent (repaired or already so), 2 without DATABASE_URL,
/// 1 when a store fails or the event does not exist.
pub fn run(r: Reconcile) -> ExitCode {
    let Some(url) = r.stores.database.url() else {
        eprintln!("error: happening reconcile needs the database: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    logs::init("warn", LogFormat::Text);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let redis = match r.stores.redis_target() {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        let pg = pg_engine(&url, happening_postgres::PoolConfig::new(4), redis.as_ref(), &r.stores.redis_prefix).await?;
        let drifted = match r.event {
            Some(id) => {
                let one = pg.engine.reconcile_event(id).await.map_err(|e| format!("cannot reconcile event {id}: {e}"))?;
                if one.drifted() {
                    vec![one]
                } else {
                    Vec::new()
                }
            }
            None => pg.engine.reconcile_all().await.map_err(|e| format!("cannot reconcile: {e}"))?,
        };
        pg.pool.close().await;
        Ok::<_, String>(drifted)
    });
    match result {
        Ok(drifted) => {
            for d in &drifted {
                println!("{}", describe(d));
            }
            if drifted.is_empty() {
                println!("no drift: every counter and waitlist matches the store");
            } else {
                println!("repaired {} event(s)", drifted.len());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
