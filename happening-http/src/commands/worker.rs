//! `happening worker`: the consumer of the RabbitMQ notifications queue.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use happening_http::server;

use super::runtime;
use crate::cli::WorkerCmd;
use crate::logs;
use crate::wiring::pg_pool;

/// Runs until SIGTERM/SIGINT. Exit 2 without RABBITMQ_URL/AMQP_URL or DATABASE_URL, 1 when
/// PostgreSQL cannot be used.
pub fn run(w: WorkerCmd) -> ExitCode {
    let (Some(rabbit), Some(database_url)) = (w.amqp.url(), w.database.url()) else {
        eprintln!("error: happening worker needs RabbitMQ and the database: set RABBITMQ_URL (or AMQP_URL) and DATABASE_URL");
        return ExitCode::from(2);
    };
    logs::init(&w.log.log_level, w.log.log_format);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let pool = pg_pool(&database_url, happening_postgres::PoolConfig::new(8)).await?;
        let log = Arc::new(happening_amqp::StoreDeliveryLog::new(Arc::new(happening_postgres::PgStore::new(pool.clone()))));
        let config = happening_amqp::WorkerConfig {
            queue: w.amqp.notifications_queue.clone(),
            prefetch: w.prefetch,
            max_attempts: w.max_attempts,
            retry_delay: Duration::from_millis(w.retry_delay_ms),
            connect_timeout_ms: w.amqp.rabbitmq_connect_timeout_ms,
            ..Default::default()
        };
        let worker = match &w.webhook_url {
            Some(hook) if !hook.is_empty() => {
                happening_amqp::Worker::with_sink(&rabbit, config, log, Arc::new(happening_amqp::WebhookSink::new(hook.clone())))
            }
            _ => happening_amqp::Worker::with_sink(&rabbit, config, log, Arc::new(happening_amqp::LogSink)),
        };
        let shutdown = happening_amqp::CancellationToken::new();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                server::shutdown_signal().await;
                tracing::info!("shutdown requested: finishing messages in flight");
                shutdown.cancel();
            }
        });
        tracing::info!(queue = %w.amqp.notifications_queue, sink = if w.webhook_url.as_deref().is_some_and(|h| !h.is_empty()) { "webhook" } else { "log" }, prefetch = w.prefetch, max_attempts = w.max_attempts, retry_delay_ms = w.retry_delay_ms, "starting happening worker");
        println!("happening worker consuming {}", w.amqp.notifications_queue);
        worker.run(shutdown).await;
        let stats = worker.stats();
        tracing::info!(?stats, "worker stopped");
        pool.close().await;
        Ok::<_, String>(())
    });
    // Not waiting for blocking threads (a DNS lookup), as `serve`.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
