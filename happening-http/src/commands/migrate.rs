//! `happening migrate`: the embedded migrations applied to DATABASE_URL.

use std::process::ExitCode;

use crate::cli::Migrate;
use crate::wiring::pg_connect;

/// Exit 0 when the database is up to date (also when there was nothing to do), 2 without a
/// URL, 1 when the server cannot be reached or a migration fails.
pub fn run(m: Migrate) -> ExitCode {
    let Some(url) = m.database.url() else {
        eprintln!("error: happening migrate needs the database: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        use sqlx::migrate::Migrate as _;
        use sqlx::Connection as _;
        let mut conn = pg_connect(&url).await?;
        conn.ensure_migrations_table().await.map_err(|e| format!("cannot read the migrations table: {e}"))?;
        let applied_before = conn.list_applied_migrations().await.map_err(|e| format!("cannot read the migrations table: {e}"))?.len();
        happening_postgres::MIGRATOR.run(&mut conn).await.map_err(|e| format!("migration failed: {e}"))?;
        let total = happening_postgres::MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).count();
        let _ = conn.close().await;
        Ok::<_, String>((total.saturating_sub(applied_before), total))
    });
    match result {
        Ok((0, total)) => {
            println!("database is up to date ({total} migration(s)); nothing to apply");
            ExitCode::SUCCESS
        }
        Ok((n, total)) => {
            println!("applied {n} migration(s); database is up to date ({total} migration(s))");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
