//! The Lua scripts: one per operation that reads and writes, so that each runs as one atomic
//! step on the server (Redis runs a script to its end before anything else).
//!
//! Every script takes the event's keys as `KEYS[1]` (counter), `KEYS[2]` (waitlist),
//! `KEYS[3]` (booking -> member hash) and `KEYS[4]` (version), and answers `-1` (or a
//! table starting with `-1`, or `false`) when the counter is absent (or not a count): the
//! event is *missing* here, and the engine rebuilds it from the store. The counter is the mark of an event's existence, as the in-memory
//! admission's per-event gate is: a queue key may be absent just because it is empty.

use std::sync::LazyLock;

use redis::Script;

/// Helpers put before every script: the counter of the event (nil when it is absent, or
/// holds anything but a count of seats, which only someone else can have written: both are
/// *missing*, and the engine rebuilds the event); the seats and the booking of a member
/// `<seq>:<booking>:<seats>`.
const PRELUDE: &str = r#"
local function counter()
  local v = redis.call('GET', KEYS[1])
  if not v then return nil end
  local n = tonumber(v)
  if not n or n < 0 or n ~= math.floor(n) or n > 4294967295 then return nil end
  return n
end
local function seats_of(m) return tonumber(string.match(m, ':(%d+)$')) end
local function booking_of(m) return string.match(m, '^%d+:(.+):%d+$') end
local function bump()
  if redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('INCR', KEYS[4])
  else
    local t = redis.call('TIME')
    redis.call('SET', KEYS[4], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
  end
end
"#;

/// ARGV: want, min, behind_queue (0/1), waitlist_max (-1: none).
/// Returns {1, taken, 0} | {0, free, queued (0/1)} | {2, 0, 0} (short, and the waitlist
/// holds waitlist_max entries) | {-1, 0, 0}.
/// The counter is read, compared and decremented inside one script: it never goes below
/// zero, and nobody ever sees a value that a revert would undo.
const TAKE: &str = r#"
local free = counter()
if not free then return {-1, 0, 0} end
local waiting = redis.call('ZCARD', KEYS[2])
local queued = 0
if ARGV[3] == '1' and waiting > 0 then queued = 1 end
local n = math.min(tonumber(ARGV[1]), free)
if queued == 0 and n >= tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], n)
  bump()
  return {1, n, 0}
end
local max = tonumber(ARGV[4])
if max >= 0 and waiting >= max then return {2, 0, 0} end
return {0, free, queued}
"#;

/// ARGV: n. Returns the new free count, or -1 (missing: nothing created). Moves the
/// version either way (as `push` and `remove` do).
const GIVE: &str = r#"
bump()
if not counter() then return -1 end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"#;

/// ARGV: booking, member. Returns 1 if any seat is free (the counter, read in the same
/// step), else 0, or -1. A booking already queued stays where it is. (Its place in line is
/// the store's answer, told when it was queued.)
const PUSH: &str = r#"
bump()
local free = counter()
if not free then return -1 end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
end
if free > 0 then return 1 end
return 0
"#;

/// ARGV: booking. Returns 1 (removed), 0 (not queued) or -1.
const REMOVE: &str = r#"
bump()
if not counter() then return -1 end
local m = redis.call('HGET', KEYS[3], ARGV[1])
if not m then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[2], m)
"#;

/// ARGV: booking. Returns the 1-based position, 0 (not queued) or -1. Read-only.
const POSITION: &str = r#"
if not counter() then return -1 end
local m = redis.call('HGET', KEYS[3], ARGV[1])
if not m then return 0 end
local r = redis.call('ZRANK', KEYS[2], m)
if not r then return 0 end
return r + 1
"#;

/// Returns the queue length, or -1. Read-only.
const LEN: &str = r#"
if not counter() then return -1 end
return redis.call('ZCARD', KEYS[2])
"#;

/// ARGV: stop index (limit - 1). Returns the members head first, or false (missing).
/// Read-only.
const LIST: &str = r#"
if not counter() then return false end
return redis.call('ZRANGE', KEYS[2], 0, ARGV[1])
"#;

/// ARGV: policy (fifo, first_fit, partial).
/// Returns {1, seats taken, member} | {0, 0, ''} (nothing fits) | {-1, 0, ''}.
/// Chooses the entry, removes it from the queue and the hash, and takes its seats from the
/// counter, all in one step: no other request can take those seats in between.
const POP_FITTING: &str = r#"
local free = counter()
if not free then return {-1, 0, ''} end
local policy = ARGV[1]
local pick, seats
if policy == 'first_fit' then
  local start, chunk = 0, 256
  while not pick do
    local ms = redis.call('ZRANGE', KEYS[2], start, start + chunk - 1)
    if #ms == 0 then break end
    for _, m in ipairs(ms) do
      local s = seats_of(m)
      if s <= free then pick, seats = m, s break end
    end
    start = start + chunk
  end
else
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head then
    local s = seats_of(head)
    if policy == 'fifo' then
      if s <= free then pick, seats = head, s end
    elseif policy == 'partial' then
      if free >= 1 then pick, seats = head, math.min(s, free) end
    else
      return redis.error_reply('unknown policy ' .. policy)
    end
  end
end
if not pick then return {0, 0, ''} end
redis.call('ZREM', KEYS[2], pick)
redis.call('HDEL', KEYS[3], booking_of(pick))
redis.call('DECRBY', KEYS[1], seats)
bump()
return {1, seats, pick}
"#;

/// ARGV: free. Creates or overwrites the counter.
const SET_FREE: &str = r#"
redis.call('SET', KEYS[1], ARGV[1])
bump()
return 1
"#;

/// Removes the counter and the queue; the version stays (and moves).
const FORGET: &str = r#"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
bump()
return 1
"#;

/// ARGV: the version read before the store was, free, then the members of the new queue.
/// Returns 0 (the version moved: nothing written) or 1 (counter set, queue and hash
/// replaced, version moved).
const RESTORE: &str = r#"
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SET', KEYS[1], ARGV[2])
bump()
local batch = 500
for i = 3, #ARGV, batch do
  local z, h = {}, {}
  for j = i, math.min(i + batch - 1, #ARGV) do
    local m = ARGV[j]
    z[#z + 1] = 0
    z[#z + 1] = m
    h[#h + 1] = booking_of(m)
    h[#h + 1] = m
  end
  redis.call('ZADD', KEYS[2], unpack(z))
  redis.call('HSET', KEYS[3], unpack(h))
end
return 1
"#;

pub(crate) struct Scripts {
    pub take: Script,
    pub give: Script,
    pub push: Script,
    pub remove: Script,
    pub position: Script,
    pub len: Script,
    pub list: Script,
    pub pop_fitting: Script,
    pub set_free: Script,
    pub forget: Script,
    pub restore: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    take: script(TAKE),
    give: script(GIVE),
    push: script(PUSH),
    remove: script(REMOVE),
    position: script(POSITION),
    len: script(LEN),
    list: script(LIST),
    pop_fitting: script(POP_FITTING),
    set_free: script(SET_FREE),
    forget: script(FORGET),
    restore: script(RESTORE),
});
