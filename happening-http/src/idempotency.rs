//! `Idempotency-Key` at the HTTP layer: the first successful response to a key is kept
//! (bounded, oldest evicted) and returned verbatim to a repeat; the same key with another
//! request is a 422. Underneath, the engine binds the key in the store too, so a repeat
//! that misses this cache (another replica, an evicted entry) still books nothing new.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use bytes::Bytes;
use happening_core::ids::UserId;
use warp::http::StatusCode;

#[derive(Clone)]
pub struct Stored {
    pub fingerprint: u64,
    pub status: StatusCode,
    pub body: Bytes,
}

type Key = (UserId, String);

pub struct IdempotencyCache {
    /// The responses, and their keys oldest first (for eviction).
    inner: Mutex<(HashMap<Key, Stored>, VecDeque<Key>)>,
    capacity: usize,
}

/// Outcome of looking a key up.
pub enum Lookup {
    Miss,
    Replay(Stored),
    Mismatch,
}

impl IdempotencyCache {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new((HashMap::new(), VecDeque::new())), capacity }
    }

    pub fn lookup(&self, user: UserId, key: &str, fingerprint: u64) -> Lookup {
        let g = self.inner.lock().expect("idempotency lock");
        match g.0.get(&(user, key.to_string())) {
            None => Lookup::Miss,
            Some(s) if s.fingerprint == fingerprint => Lookup::Replay(s.clone()),
            Some(_) => Lookup::Mismatch,
        }
    }

    pub fn store(&self, user: UserId, key: &str, stored: Stored) {
        let mut g = self.inner.lock().expect("idempotency lock");
        let k = (user, key.to_string());
        if g.0.contains_key(&k) {
            return; // a concurrent twin stored first; keep the first response
        }
        while g.0.len() >= self.capacity {
            match g.1.pop_front() {
                Some(old) => {
                    g.0.remove(&old);
                }
                None => break,
            }
        }
        g.0.insert(k.clone(), stored);
        g.1.push_back(k);
    }
}

/// A fingerprint of a request: operation, path and the parsed JSON body (so that key order
/// and whitespace do not matter).
pub fn fingerprint(op: &str, path: &str, body: &Bytes) -> u64 {
    let canonical = serde_json::from_slice::<serde_json::Value>(body).map(|v| v.to_string()).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    op.hash(&mut h);
    path.hash(&mut h);
    canonical.hash(&mut h);
    h.finish()
}
