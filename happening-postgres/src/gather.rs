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

/// What one call may hold: at most `items_max` requests, of which at most `heavy_max` are
/// `heavy` (requests that cost the call a bounded resource, e.g. a subtransaction each).
pub(crate) struct Bound<I> {
    pub items_max: usize,
    pub heavy: fn(&I) -> bool,
    pub heavy_max: usize,
}

impl<I> Clone for Bound<I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I> Copy for Bound<I> {}

impl<I> Bound<I> {
    /// At most `items_max` requests, all alike.
    pub(crate) fn items(items_max: usize) -> Self {
        Self { items_max, heavy: |_| false, heavy_max: items_max }
    }
}

/// The queue's receiving end, with the request a full call left for the next one.
struct Inbox<I, O> {
    rx: mpsc::Receiver<Job<I, O>>,
    carried: Option<Job<I, O>>,
}

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
    /// Starts `workers` tasks on the current tokio runtime, each running batches within
    /// `bound` with `run`, which answers each request of its batch, in order; when a call
    /// fails, `fail` answers each of its requests from why. `None` outside a runtime (the
    /// caller then runs each request as a batch of one).
    pub(crate) fn start<F, Fut, E, X>(workers: usize, bound: Bound<I>, run: F, fail: X) -> Option<Self>
    where
        F: Fn(Vec<I>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, E>> + Send + 'static,
        E: std::fmt::Display + 'static,
        X: Fn(&str) -> O + Clone + Send + Sync + 'static,
    {
        assert!(workers > 0 && bound.items_max > 0 && bound.heavy_max > 0, "{workers} workers, batches of {}", bound.items_max);
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        let inbox = Arc::new(Mutex::new(Inbox { rx, carried: None }));
        for _ in 0..workers {
            rt.spawn(work(inbox.clone(), bound, run.clone(), fail.clone()));
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

async fn work<I, O, F, Fut, E, X>(inbox: Arc<Mutex<Inbox<I, O>>>, bound: Bound<I>, run: F, fail: X)
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, E>>,
    E: std::fmt::Display,
    X: Fn(&str) -> O,
{
    loop {
        let mut jobs = Vec::with_capacity(bound.items_max);
        {
            // One worker gathers at a time: what queued while the others ran, without waiting
            // for more.
            let mut inbox = inbox.lock().await;
            let first = match inbox.carried.take() {
                Some(job) => job,
                None => match inbox.rx.recv().await {
                    Some(job) => job,
                    None => return,
                },
            };
            let mut heavy = usize::from((bound.heavy)(&first.0));
            jobs.push(first);
            while jobs.len() < bound.items_max {
                let Ok(job) = inbox.rx.try_recv() else { break };
                if (bound.heavy)(&job.0) {
                    if heavy == bound.heavy_max {
                        inbox.carried = Some(job);
                        break;
                    }
                    heavy += 1;
                }
                jobs.push(job);
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
            Bound::items(8),
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

    /// A call holds at most its bound of heavy requests; the one that did not fit goes first
    /// in the next call, and every request is answered once.
    #[tokio::test]
    async fn heavy_requests_beyond_their_bound_wait_for_the_next_call() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        let (go, ready) = tokio::sync::oneshot::channel::<()>();
        let ready = Arc::new(Mutex::new(Some(ready)));
        // Odd requests are heavy: at most 2 a call, 8 requests a call.
        let bound = Bound { items_max: 8, heavy: |i: &u32| i % 2 == 1, heavy_max: 2 };
        let gather = Gather::start(
            1,
            bound,
            move |items: Vec<u32>| {
                let (seen, ready) = (seen.clone(), ready.clone());
                async move {
                    // The first call waits until everything queued behind it.
                    if let Some(ready) = ready.lock().await.take() {
                        let _ = ready.await;
                    }
                    seen.lock().unwrap().push(items.clone());
                    Ok::<_, String>(items)
                }
            },
            |_| unreachable!("no call fails"),
        )
        .map(Arc::new)
        .expect("inside a runtime");
        let mut waiting = Vec::new();
        for i in 0..12u32 {
            let g = gather.clone();
            waiting.push(tokio::spawn(async move { (i, g.submit(i).await) }));
            tokio::task::yield_now().await;
        }
        go.send(()).expect("the first call waits");
        for w in waiting {
            let (i, answer) = w.await.expect("no panic");
            assert_eq!(answer, Some(i), "each request its own answer");
        }
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 12, "each request once: {calls:?}");
        assert!(calls.iter().all(|c| c.len() <= 8 && c.iter().filter(|&&i| i % 2 == 1).count() <= 2), "within the bound: {calls:?}");
        let order: Vec<u32> = calls.concat();
        assert_eq!(order, (0..12).collect::<Vec<_>>(), "in the order they queued: {calls:?}");
    }

    /// A call that fails answers each of its requests with why.
    #[tokio::test]
    async fn a_failed_call_fails_each_of_its_requests() {
        let gather =
            Gather::start(1, Bound::items(8), |_: Vec<u32>| async { Err::<Vec<String>, _>("gone") }, |why| format!("failed: {why}"))
                .expect("inside a runtime");
        assert_eq!(gather.submit(1).await.as_deref(), Some("failed: gone"));
    }

    #[test]
    fn outside_a_runtime_there_is_no_gatherer() {
        assert!(Gather::start(1, Bound::items(1), |items: Vec<u8>| async move { Ok::<_, String>(items) }, |_| 0).is_none());
    }
}
