//! Smart batching: concurrent requests of one kind share one database call.
//!
//! Callers queue their requests; each of a few workers takes what queued while it was busy
//! (at most a batch's worth) and runs it as one call, then answers each caller. A lone
//! request goes at once, alone: no timer ever delays one. Under load the batches fill by
//! themselves, and what a call costs per round trip (the network, the statement's executor
//! start, the transaction and its commit) is paid once per batch, not once per request.
//!
//! A request is answered from a call that started after it was queued, so batching never
//! answers it from a state older than the request itself.
//!
//! Used by the booking batcher (`batch.rs`, group commit) and the admission's probes
//! (`admission.rs`).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

/// Requests waiting for a worker at most; more wait in [`Gather::submit`] (back pressure).
const QUEUE_MAX: usize = 4096;

type Job<I, O> = (I, oneshot::Sender<O>);

/// A queue that worker tasks drain in batches. They end when the last handle is dropped.
pub(crate) struct Gather<I, O> {
    tx: mpsc::Sender<Job<I, O>>,
}

impl<I, O> std::fmt::Debug for Gather<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather").finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> Gather<I, O> {
    /// Starts `workers` tasks on the current tokio runtime, each running batches of at most
    /// `batch_max` requests with `run`, which answers each request of its batch, in order;
    /// when a call fails, `fail` answers each of its requests from why. `None` outside a
    /// runtime (the caller then runs each request as a batch of one).
    pub(crate) fn start<F, Fut, E, X>(workers: usize, batch_max: usize, run: F, fail: X) -> Option<Self>
    where
        F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
        E: std::fmt::Display + 'static,
        X: Fn(&str) -> O + Clone + Send + Sync + 'static,
    {
        assert!(workers > 0 && batch_max > 0, "{workers} workers, batches of {batch_max}");
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            rt.spawn(work(rx.clone(), batch_max, run.clone(), fail.clone()));
        }
        Some(Self { tx })
    }

    /// The answer to `item`; `None` if the workers stopped (their runtime shut down).
    pub(crate) async fn submit(&self, item: I) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply)).await.ok()?;
        answer.await.ok()
    }
}

async fn work<I, O, F, Fut, E, X>(rx: Arc<Mutex<mpsc::Receiver<Job<I, O>>>>, batch_max: usize, run: F, fail: X)
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, E>>,
    E: std::fmt::Display,
    X: Fn(&str) -> O,
{
    loop {
        let mut jobs = Vec::with_capacity(batch_max);
        {
            // One worker gathers at a time: what queued while the others ran, without waiting
            // for more.
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            while jobs.len() < batch_max {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let (items, replies): (Vec<I>, Vec<_>) = jobs.into_iter().unzip();
        let n = items.len();
        let answers = match run(items).await {
            Ok(answers) => answers,
            Err(e) => {
                let why = e.to_string();
                (0..n).map(|_| fail(&why)).collect()
            }
        };
        assert_eq!(answers.len(), n, "one answer per request");
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The caller may have gone (its request was dropped): nothing to tell it.
            let _ = reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests that queue while the workers are busy go together, and each gets its own
    /// answer.
    #[tokio::test]
    async fn requests_queued_meanwhile_share_a_batch_and_get_their_own_answers() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let gather = Gather::start(
            1,
            8,
            move |items: Vec<u32>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(items.len());
                    // Busy long enough for the others to queue.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok::<_, String>(items.into_iter().map(|i| i * 10).collect::<Vec<_>>())
                }
            },
            |_| unreachable!("no call fails"),
        )
        .expect("inside a runtime");
        let gather = Arc::new(gather);
        let calls: Vec<_> = (0..20u32)
            .map(|i| {
                let g = gather.clone();
                tokio::spawn(async move { (i, g.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, answer) = call.await.expect("no panic");
            assert_eq!(answer, Some(i * 10));
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20, "every request ran once: {sizes:?}");
        assert!(sizes.iter().all(|&n| n <= 8), "no batch over its bound: {sizes:?}");
        assert!(sizes.len() < 20, "queued requests went together: {sizes:?}");
    }

    /// A call that fails answers each of its requests with why.
    #[tokio::test]
    async fn a_failed_call_fails_each_of_its_requests() {
        let gather = Gather::start(1, 8, |_: Vec<u32>| async { Err::<Vec<String>, _>("gone") }, |why| format!("failed: {why}"))
            .expect("inside a runtime");
        assert_eq!(gather.submit(1).await.as_deref(), Some("failed: gone"));
    }

    #[test]
    fn outside_a_runtime_there_is_no_gatherer() {
        assert!(Gather::start(1, 1, |items: Vec<u8>| async move { Ok::<_, String>(items) }, |_| 0).is_none());
    }
}
