//! A map split into independently locked shards, keyed by random ids.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

const SHARDS: usize = 64;

/// Hashes ids that are already random (v4 UUIDs): folding their bytes is enough, and much
/// cheaper than SipHash on the booking hot path. Not for attacker-chosen keys of any other
/// shape; strings use the default hasher.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Something with a uuid inside, to pick a shard by.
pub(crate) trait ShardKey: Hash + Eq {
    fn uuid(&self) -> Uuid;
}

macro_rules! shard_key {
    ($($t:ty),*) => {$(
        impl ShardKey for $t {
            fn uuid(&self) -> Uuid {
                self.0
            }
        }
    )*};
}
shard_key!(crate::ids::EventId, crate::ids::BookingId, crate::ids::HoldId, crate::ids::UserId);

pub(crate) struct Sharded<K, V> {
    shards: Box<[Mutex<IdMap<K, V>>]>,
}

impl<K: ShardKey, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(IdMap::default())).collect() }
    }
}

impl<K: ShardKey, V> Sharded<K, V> {
    /// The locked shard that holds `key`.
    pub(crate) fn shard(&self, key: &K) -> MutexGuard<'_, IdMap<K, V>> {
        let i = (key.uuid().as_u128() as usize) % SHARDS;
        self.shards[i].lock().expect("shard lock poisoned")
    }

    pub(crate) fn get_cloned(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.shard(key).get(key).cloned()
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        self.shard(&key).insert(key, value);
    }

    pub(crate) fn remove(&self, key: &K) -> Option<V> {
        self.shard(key).remove(key)
    }
}
