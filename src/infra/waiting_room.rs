//! The waiting room in Redis: one Lua script per operation, each touching only one concert's
//! keys (one hash tag, one Cluster slot), each reading the time from Redis (`TIME`) so every
//! API instance and promoter shares one clock. Data model: the table in `src/keys.rs`;
//! reasoning: docs/waiting-room.md.

use std::sync::LazyLock;

use anyhow::Context;
use redis::Value;
use uuid::Uuid;

use crate::infra::redis::Redis;
use crate::keys::{Keys, QueueKeys};

/// Shared by every script: the clock, the view of an entry, expiry of active slots and the
/// per-second admission budget.
const PRELUDE: &str = r"
local waiting, active, entries, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local seq, budget, admitted, meta = KEYS[5], KEYS[6], KEYS[7], KEYS[8]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function meta_values()
  local m = redis.call('HMGET', meta, 'opens_at', 'sold_out')
  return tonumber(m[1] or '0') or 0, m[2] == '1'
end

-- {entry, status, number, opens_at, sold_out, admitted in the last minute, now, the oldest of
-- those admissions}. number: the 1-based position while waiting, the end of the slot (ms)
-- while active.
local function view(entry, now)
  local opens_at, sold_out = meta_values()
  local recent = redis.call('ZCOUNT', admitted, now - 60000, '+inf')
  local first = redis.call('ZRANGEBYSCORE', admitted, now - 60000, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local tail = {opens_at, sold_out and 1 or 0, recent, now, tonumber(first[2] or now)}
  local ends = redis.call('ZSCORE', active, entry)
  if ends and tonumber(ends) > now then
    return {entry, 'active', tonumber(ends), unpack(tail)}
  end
  local rank = redis.call('ZRANK', waiting, entry)
  if rank then
    if now < opens_at then return {entry, 'pre_queue', 0, unpack(tail)} end
    if sold_out then return {entry, 'sold_out', rank + 1, unpack(tail)} end
    return {entry, 'waiting', rank + 1, unpack(tail)}
  end
  return {entry, 'expired', 0, unpack(tail)}
end

local function forget(entry)
  local info = redis.call('HGET', entries, entry)
  if info then
    local user = string.match(info, '^([^:]+):')
    if user and redis.call('HGET', users, user) == entry then redis.call('HDEL', users, user) end
    redis.call('HDEL', entries, entry)
  end
end

-- Ends active slots whose time is up (at most `limit`); returns how many.
local function expire_active(now, limit)
  local gone = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, limit)
  for _, entry in ipairs(gone) do
    redis.call('ZREM', active, entry)
    forget(entry)
  end
  return #gone
end

local function budget_left(now, rate)
  local b = redis.call('HMGET', budget, 'sec', 'used')
  if tonumber(b[1]) ~= math.floor(now / 1000) then return rate end
  return rate - (tonumber(b[2]) or 0)
end

local function spend(now, n)
  local sec = math.floor(now / 1000)
  if tonumber(redis.call('HGET', budget, 'sec')) ~= sec then
    redis.call('HSET', budget, 'sec', sec, 'used', n)
  else
    redis.call('HINCRBY', budget, 'used', n)
  end
end
";

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{PRELUDE}\n{body}"))
}

/// ARGV: user, fresh entry id, opens_at (ms, 0: open), capacity, rate, active TTL (ms),
/// pre-queue score (uniform in [0, 1)).
static JOIN: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
local user, fresh = ARGV[1], ARGV[2]
local now = now_ms()
redis.call('HSETNX', meta, 'opens_at', ARGV[3])
local existing = redis.call('HGET', users, user)
if existing then
  local current = view(existing, now)
  if current[2] ~= 'expired' then return current end
  redis.call('ZREM', waiting, existing)
  redis.call('ZREM', active, existing)
  forget(existing)
end
redis.call('HSET', users, user, fresh)
redis.call('HSET', entries, fresh, user .. ':' .. now)
local opens_at, sold_out = meta_values()
if now < opens_at then
  -- The pre-queue: a random place below 1, drawn now and revealed at the opening; everyone
  -- who joins after the opening gets a sequence number from 1 up, behind all of them.
  redis.call('ZADD', waiting, ARGV[7], fresh)
  return view(fresh, now)
end
if redis.call('ZCARD', waiting) == 0 and not sold_out then
  expire_active(now, 100)
  if redis.call('ZCARD', active) < tonumber(ARGV[4]) and budget_left(now, tonumber(ARGV[5])) > 0 then
    spend(now, 1)
    redis.call('ZADD', active, now + tonumber(ARGV[6]), fresh)
    redis.call('ZADD', admitted, now, fresh)
    return view(fresh, now)
  end
end
redis.call('ZADD', waiting, redis.call('INCR', seq), fresh)
return view(fresh, now)
",
    )
});

/// ARGV: entry.
static STATUS: LazyLock<redis::Script> = LazyLock::new(|| script("return view(ARGV[1], now_ms())"));

/// ARGV: user, entry. Leaves the line or gives the active slot back; idempotent.
static LEAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
local removed = redis.call('ZREM', waiting, ARGV[2]) + redis.call('ZREM', active, ARGV[2])
forget(ARGV[2])
return removed
",
    )
});

/// ARGV: user. Ends the user's active slot (payment completed); returns 1 if there was one.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
local entry = redis.call('HGET', users, ARGV[1])
if not entry then return 0 end
local removed = redis.call('ZREM', active, entry)
if removed == 1 then forget(entry) end
return removed
",
    )
});

/// ARGV: capacity, rate, active TTL (ms), most to admit in this call.
/// Returns {admitted, expired, waiting, active, opened (0/1), wait ms of each admitted…}.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
local now = now_ms()
local opens_at, sold_out = meta_values()
if now < opens_at then
  return {0, 0, redis.call('ZCARD', waiting), redis.call('ZCARD', active), 0}
end
local expired = expire_active(now, 1000)
redis.call('ZREMRANGEBYSCORE', admitted, '-inf', now - 60000)
local result = {0, expired, 0, 0, 1}
if not sold_out then
  local free = tonumber(ARGV[1]) - redis.call('ZCARD', active)
  local n = math.min(free, budget_left(now, tonumber(ARGV[2])), tonumber(ARGV[4]))
  if n > 0 then
    local popped = redis.call('ZPOPMIN', waiting, n)
    local ends = now + tonumber(ARGV[3])
    for i = 1, #popped, 2 do
      local entry = popped[i]
      redis.call('ZADD', active, ends, entry)
      redis.call('ZADD', admitted, now, entry)
      local info = redis.call('HGET', entries, entry)
      local joined = info and tonumber(string.match(info, ':(%d+)$')) or now
      result[#result + 1] = now - joined
    end
    result[1] = #popped / 2
    if result[1] > 0 then spend(now, result[1]) end
  end
end
result[3] = redis.call('ZCARD', waiting)
result[4] = redis.call('ZCARD', active)
return result
",
    )
});

/// The SHA1 names of the join and status scripts, as `EVALSHA` calls them: `imticket-bench`
/// hands them to `redis-benchmark` for a same-run reference of the scripts alone.
pub fn script_hashes() -> (&'static str, &'static str) {
    (JOIN.get_hash(), STATUS.get_hash())
}

/// How an entry stands, as one script read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    pub entry: Uuid,
    /// `pre_queue`, `waiting`, `sold_out`, `active` or `expired`.
    pub status: String,
    /// The 1-based position while waiting (or sold out); the slot's end (Unix ms) while active.
    pub number: i64,
    /// When the sale opens (Unix ms; 0: open).
    pub opens_at_ms: i64,
    pub sold_out: bool,
    /// Admissions of this concert in the last minute.
    pub admitted_last_minute: i64,
    /// Redis's clock when it answered (Unix ms).
    pub now_ms: i64,
    /// The oldest admission of the last minute (Unix ms; `now_ms` when none).
    pub oldest_admission_ms: i64,
}

/// What one admission round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmitReport {
    pub admitted: u64,
    pub expired: u64,
    pub waiting: u64,
    pub active: u64,
    /// Whether the sale is open (admission may happen at all).
    pub open: bool,
    /// How long each admitted entry waited, join to admission (ms).
    pub waits_ms: Vec<u64>,
}

/// Waiting-room counts for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub concert_id: Uuid,
    /// Waiting after the opening (0 before it).
    pub waiting: u64,
    /// Joined before the opening (0 after it).
    pub pre_queue: u64,
    pub active: u64,
    pub admitted_last_minute: u64,
    pub sold_out: bool,
    /// Unix ms; 0: open.
    pub opens_at_ms: i64,
}

/// Settings of an admission (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub capacity: u32,
    pub per_second: u32,
    pub active_ttl_ms: u64,
}

fn invoke<'a>(script: &'a redis::Script, keys: &QueueKeys) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for key in keys.all() {
        invocation.key(key);
    }
    invocation
}

fn int(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Int(n)) => *n,
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).parse().unwrap_or(0),
        Some(Value::SimpleString(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Int(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn parse_view(reply: Value) -> anyhow::Result<EntryView> {
    let Value::Array(items) = reply else {
        anyhow::bail!("unexpected waiting-room reply {reply:?}");
    };
    Ok(EntryView {
        entry: text(items.first()).parse().context("entry id in waiting-room reply")?,
        status: text(items.get(1)),
        number: int(items.get(2)),
        opens_at_ms: int(items.get(3)),
        sold_out: int(items.get(4)) == 1,
        admitted_last_minute: int(items.get(5)),
        now_ms: int(items.get(6)),
        oldest_admission_ms: int(items.get(7)),
    })
}

/// ZCARD waiting, ZCARD active, HMGET meta opens_at sold_out, TIME.
type StatsReply = (u64, u64, (Option<i64>, Option<String>), (i64, i64));

/// One concert's waiting room in Redis.
pub struct WaitingRoom<'a> {
    redis: &'a Redis,
    keys: QueueKeys,
}

impl<'a> WaitingRoom<'a> {
    pub fn new(redis: &'a Redis, keys: &Keys, concert_id: Uuid) -> Self {
        Self {
            redis,
            keys: keys.queue(concert_id),
        }
    }

    /// Joins `user` (idempotent: a live entry is returned as it is). `fresh` becomes the
    /// entry id if a new entry is made.
    pub async fn join(
        &self,
        user: Uuid,
        fresh: Uuid,
        opens_at_ms: i64,
        admission: Admission,
    ) -> anyhow::Result<EntryView> {
        let mut conn = self.redis.connection().await?;
        let reply: Value = invoke(&JOIN, &self.keys)
            .arg(user.to_string())
            .arg(fresh.to_string())
            .arg(opens_at_ms.max(0))
            .arg(admission.capacity)
            .arg(admission.per_second)
            .arg(admission.active_ttl_ms)
            .arg(rand::random::<f64>())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: join")?;
        parse_view(reply)
    }

    pub async fn status(&self, entry: Uuid) -> anyhow::Result<EntryView> {
        let mut conn = self.redis.connection().await?;
        let reply: Value = invoke(&STATUS, &self.keys)
            .arg(entry.to_string())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: status")?;
        parse_view(reply)
    }

    /// Returns whether the entry was still in line or active.
    pub async fn leave(&self, user: Uuid, entry: Uuid) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let removed: i64 = invoke(&LEAVE, &self.keys)
            .arg(user.to_string())
            .arg(entry.to_string())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: leave")?;
        Ok(removed > 0)
    }

    /// Ends `user`'s active slot; returns whether there was one.
    pub async fn release(&self, user: Uuid) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let removed: i64 = invoke(&RELEASE, &self.keys)
            .arg(user.to_string())
            .invoke_async(&mut conn)
            .await
            .context("waiting room: release")?;
        Ok(removed > 0)
    }

    /// Admits up to `most` waiting entries in line order, within the capacity and the current
    /// second's budget, after ending the slots whose time is up.
    pub async fn admit(&self, admission: Admission, most: u32) -> anyhow::Result<AdmitReport> {
        let mut conn = self.redis.connection().await?;
        let reply: Vec<i64> = invoke(&ADMIT, &self.keys)
            .arg(admission.capacity)
            .arg(admission.per_second)
            .arg(admission.active_ttl_ms)
            .arg(most)
            .invoke_async(&mut conn)
            .await
            .context("waiting room: admit")?;
        let at = |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(AdmitReport {
            admitted: at(0),
            expired: at(1),
            waiting: at(2),
            active: at(3),
            open: at(4) == 1,
            waits_ms: reply.iter().skip(5).map(|w| (*w).max(0) as u64).collect(),
        })
    }

    /// Marks the concert sold out (admission pauses) or not.
    pub async fn set_sold_out(&self, sold_out: bool) -> anyhow::Result<()> {
        let mut conn = self.redis.connection().await?;
        let () = redis::cmd("HSET")
            .arg(&self.keys.meta)
            .arg("sold_out")
            .arg(u8::from(sold_out))
            .query_async(&mut conn)
            .await
            .context("waiting room: sold out flag")?;
        Ok(())
    }

    /// Counts for operators (`imticket-admin queue stats`) and metrics.
    pub async fn stats(&self, concert_id: Uuid) -> anyhow::Result<QueueStats> {
        let mut conn = self.redis.connection().await?;
        let (in_line, active, meta, now): StatsReply = redis::pipe()
            .cmd("ZCARD")
            .arg(&self.keys.waiting)
            .cmd("ZCARD")
            .arg(&self.keys.active)
            .cmd("HMGET")
            .arg(&self.keys.meta)
            .arg("opens_at")
            .arg("sold_out")
            .cmd("TIME")
            .query_async(&mut conn)
            .await
            .context("waiting room: stats")?;
        let now_ms = now.0 * 1000 + now.1 / 1000;
        let recent: u64 = redis::cmd("ZCOUNT")
            .arg(&self.keys.admitted)
            .arg(now_ms - 60_000)
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .context("waiting room: admissions")?;
        let opens_at_ms = meta.0.unwrap_or(0);
        let pre = now_ms < opens_at_ms;
        Ok(QueueStats {
            concert_id,
            waiting: if pre { 0 } else { in_line },
            pre_queue: if pre { in_line } else { 0 },
            active,
            admitted_last_minute: recent,
            sold_out: meta.1.as_deref() == Some("1"),
            opens_at_ms,
        })
    }

    /// Whether this concert has a waiting room at all: any of its keys exists (the first join
    /// writes `meta`, which stays after the line empties).
    pub async fn exists(&self) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let found: u64 = redis::cmd("EXISTS")
            .arg(self.keys.all().as_slice())
            .query_async(&mut conn)
            .await
            .context("waiting room: exists")?;
        Ok(found > 0)
    }

    /// Whether nothing is left: nobody waiting or active.
    pub async fn is_empty(&self) -> anyhow::Result<bool> {
        let mut conn = self.redis.connection().await?;
        let (waiting, active): (u64, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(&self.keys.waiting)
            .cmd("ZCARD")
            .arg(&self.keys.active)
            .query_async(&mut conn)
            .await
            .context("waiting room: size")?;
        Ok(waiting == 0 && active == 0)
    }
}

/// The concerts with a waiting room (the promoter's work list): a set, so no `KEYS` or `SCAN`.
pub async fn open_lines(redis: &Redis, keys: &Keys) -> anyhow::Result<Vec<Uuid>> {
    let mut conn = redis.connection().await?;
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.queue_open())
        .query_async(&mut conn)
        .await
        .context("waiting room: open lines")?;
    Ok(members.iter().filter_map(|m| m.parse().ok()).collect())
}

/// Adds a concert to the open lines. Called after every join, so a line the promoter just
/// dropped as empty is listed again by the join that refilled it.
pub async fn mark_open(redis: &Redis, keys: &Keys, concert_id: Uuid) -> anyhow::Result<()> {
    let mut conn = redis.connection().await?;
    let _: i64 = redis::cmd("SADD")
        .arg(keys.queue_open())
        .arg(concert_id.to_string())
        .query_async(&mut conn)
        .await
        .context("waiting room: list the line")?;
    Ok(())
}

/// Drops a concert from the open lines if its room is empty. Removes first, then checks again:
/// a join that refilled the room in between is listed again by it or by this check.
pub async fn drop_if_empty(redis: &Redis, keys: &Keys, concert_id: Uuid) -> anyhow::Result<bool> {
    let room = WaitingRoom::new(redis, keys, concert_id);
    if !room.is_empty().await? {
        return Ok(false);
    }
    let mut conn = redis.connection().await?;
    let _: i64 = redis::cmd("SREM")
        .arg(keys.queue_open())
        .arg(concert_id.to_string())
        .query_async(&mut conn)
        .await
        .context("waiting room: unlist the line")?;
    if !room.is_empty().await? {
        mark_open(redis, keys, concert_id).await?;
        return Ok(false);
    }
    Ok(true)
}
