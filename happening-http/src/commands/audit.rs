//! `happening audit [--event ID] [--stuck-after-secs N] [--recheck-ms N]`: the stores
//! checked against every invariant, read-only.

use std::process::ExitCode;

use crate::cli::{Audit, LogFormat};
use crate::logs;
use crate::wiring::audit_engine;

/// One line per breach (found twice, `--recheck-ms` apart), then a summary. Exit 0 when
/// clean, 1 on breaches, 2 when the stores cannot be read (or without DATABASE_URL).
pub fn run(a: Audit) -> ExitCode {
    let Some(url) = a.stores.database.url() else {
        eprintln!("error: happening audit needs the database: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    logs::init("warn", LogFormat::Text);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(_) => return ExitCode::from(2),
    };
    let redis = match a.stores.redis_target() {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = happening_core::engine::AuditOptions {
        stuck_after: chrono::Duration::seconds(i64::from(a.stuck_after_secs)),
        ..Default::default()
    };
    let result = rt.block_on(async move {
        let (engine, pool) = audit_engine(&url, redis.as_ref(), &a.stores.redis_prefix).await?;
        let once = || async {
            match a.event {
                Some(id) => engine.audit_events(&[id], &opts).await.map_err(|e| format!("cannot audit event {id}: {e}")),
                None => engine.audit_all(&opts).await.map_err(|e| format!("cannot audit: {e}")),
            }
        };
        let mut report = once().await;
        if let Ok(first) = &report {
            if !first.is_clean() && a.recheck_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(a.recheck_ms))).await;
                report = once().await.map(|again| first.confirmed_by(again));
            }
        }
        pool.close().await;
        report
    });
    match result {
        Ok(report) => {
            for b in &report.breaches {
                println!("breach: {b}");
            }
            for e in &report.admission_missing {
                println!("note: event {e} has no admission counter (rebuilt from the store on first use; not compared)");
            }
            println!(
                "audited {} event(s), {} booking(s), {} pending notification(s): {} breach(es)",
                report.events_checked,
                report.bookings_checked,
                report.pending_scanned,
                report.breaches.len()
            );
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
