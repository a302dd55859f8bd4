//! The identity cache and the call statistics as fixed-size records, for a table that lives
//! in shared memory and serves every backend of a cluster (the Postgres glue allocates it
//! and holds its lock; this module only reads and writes the records).
//!
//! An entry is found by a SHA-256 of the database, the server and the *resolved* connection
//! settings (server options and the user's mapping keys): only a user whose own resolution
//! gives the same settings can reach it. Nothing secret is stored: the hash, the identity,
//! object ids and times.

use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::row::CallerIdentity;
use crate::sts::ConnectionSettings;

/// An ARN is at most 2048 characters (IAM's limit).
pub const ARN_MAX: usize = 2048;
/// `AROA...:<session name>`: a 21-character id, a colon and at most 64 characters.
pub const USER_ID_MAX: usize = 256;
pub const ACCOUNT_MAX: usize = 32;
/// The stats' last error message is cut to this many bytes.
pub const ERROR_MAX: usize = 512;

/// UTF-8 text in a fixed buffer, cut at a character boundary when too long.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FixedText<const N: usize> {
    len: u16,
    bytes: [u8; N],
}

impl<const N: usize> FixedText<N> {
    pub fn set(&mut self, text: &str) {
        let mut len = text.len().min(N);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        self.bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        self.len = len as u16;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

/// Microseconds since the Unix epoch: every backend reads the same clock.
pub fn micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_micros() as i64,
        Err(before) => -(before.duration().as_micros() as i64),
    }
}

pub fn from_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// Feeds `Hash` into SHA-256: derived `Hash` impls write the same bytes in every process
/// running the same build, unlike `DefaultHasher`'s keyed SipHash (and with 256 bits no
/// two settings meet by chance).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("the digest is read with finalize")
    }
}

/// The key of an entry: database, server and the resolved settings.
pub fn settings_key(database_id: u32, server_id: u32, settings: &ConnectionSettings) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    database_id.hash(&mut hasher);
    server_id.hash(&mut hasher);
    settings.hash(&mut hasher);
    hasher.0.finalize().into()
}

/// Who an entry or a stats record belongs to (object ids, opaque here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub database_id: u32,
    pub server_id: u32,
    pub user_id: u32,
}

/// One cached identity, as the cache views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    pub owner: Owner,
    pub identity: CallerIdentity,
    pub cached_at: SystemTime,
    pub expires_at: SystemTime,
    pub hits: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct CacheSlot {
    in_use: bool,
    key: [u8; 32],
    owner: Owner,
    /// Syscache hash values of the server and user mapping it was filled through (0: none).
    server_source: u32,
    mapping_source: u32,
    cached_at: i64,
    expires_at: i64,
    last_used: i64,
    hits: u64,
    arn: FixedText<ARN_MAX>,
    user_id: FixedText<USER_ID_MAX>,
    account_id: FixedText<ACCOUNT_MAX>,
}

impl CacheSlot {
    fn live(&self, now: i64) -> bool {
        self.in_use && self.expires_at > now
    }

    fn identity(&self) -> CallerIdentity {
        CallerIdentity {
            arn: self.arn.as_str().to_string(),
            user_id: self.user_id.as_str().to_string(),
            account_id: self.account_id.as_str().to_string(),
        }
    }
}

/// Which catalog row changed, for [`invalidate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Server(u32),
    Mapping(u32),
    /// Postgres could not say which row changed (hash value 0).
    Any,
}

/// What a new entry holds besides its key.
pub struct Fill<'a> {
    pub owner: Owner,
    pub server_source: u32,
    pub mapping_source: u32,
    pub identity: &'a CallerIdentity,
    pub lifetime: Duration,
}

/// How many slots a key may take: a look-up reads at most this many, whatever the size.
pub const WAYS: usize = 8;

/// The slots a key may live in: `WAYS` in a row from where its hash points (a
/// set-associative table, so a look-up never scans the whole table under the lock).
fn window(key: &[u8; 32], len: usize) -> impl Iterator<Item = usize> {
    let start =
        (u64::from_le_bytes(key[..8].try_into().unwrap_or_default()) % len.max(1) as u64) as usize;
    (0..WAYS.min(len)).map(move |step| (start + step) % len)
}

fn find(slots: &[CacheSlot], key: &[u8; 32], now: i64) -> Option<usize> {
    window(key, slots.len()).find(|&index| slots[index].live(now) && slots[index].key == *key)
}

/// The live entry for `key` and how long it has left, counting a hit when `count_hit`.
pub fn get(
    slots: &mut [CacheSlot],
    key: &[u8; 32],
    now: SystemTime,
    count_hit: bool,
) -> Option<(CallerIdentity, Duration)> {
    let now = micros(now);
    let slot = &mut slots[find(slots, key, now)?];
    if count_hit {
        slot.hits += 1;
        slot.last_used = now;
    }
    let remaining = Duration::from_micros((slot.expires_at - now) as u64);
    Some((slot.identity(), remaining))
}

/// Stores an answer: over the entry of the same key, else in a free or expired slot of its
/// window, else over the window's least recently used entry (so a full table never fails a
/// query). Returns
/// whether a live entry was evicted.
pub fn put(slots: &mut [CacheSlot], key: &[u8; 32], fill: Fill, now: SystemTime) -> bool {
    let now_us = micros(now);
    if slots.is_empty() || fill.lifetime.is_zero() {
        return false;
    }
    let index = window(key, slots.len())
        .find(|&index| slots[index].in_use && slots[index].key == *key)
        .or_else(|| window(key, slots.len()).find(|&index| !slots[index].live(now_us)))
        .or_else(|| window(key, slots.len()).min_by_key(|&index| slots[index].last_used))
        .unwrap_or(0);
    let evicted = slots[index].live(now_us) && slots[index].key != *key;
    let slot = &mut slots[index];
    slot.in_use = true;
    slot.key = *key;
    slot.owner = fill.owner;
    slot.server_source = fill.server_source;
    slot.mapping_source = fill.mapping_source;
    slot.cached_at = now_us;
    slot.expires_at = now_us.saturating_add(fill.lifetime.as_micros() as i64);
    slot.last_used = now_us;
    slot.hits = 0;
    slot.arn.set(&fill.identity.arn);
    slot.user_id.set(&fill.identity.user_id);
    slot.account_id.set(&fill.identity.account_id);
    evicted
}

/// Forgets the database's entries filled through a changed server or user mapping; returns
/// how many.
pub fn invalidate(slots: &mut [CacheSlot], database_id: u32, source: Source) -> usize {
    remove_where(slots, |slot| {
        slot.owner.database_id == database_id
            && match source {
                Source::Server(hash) => slot.server_source == hash,
                Source::Mapping(hash) => slot.mapping_source == hash,
                Source::Any => true,
            }
    })
}

/// Forgets every entry of a database; returns how many were live.
pub fn clear(slots: &mut [CacheSlot], database_id: u32, now: SystemTime) -> usize {
    let now = micros(now);
    let live = slots
        .iter()
        .filter(|slot| slot.owner.database_id == database_id && slot.live(now))
        .count();
    remove_where(slots, |slot| slot.owner.database_id == database_id);
    live
}

fn remove_where(slots: &mut [CacheSlot], matches: impl Fn(&CacheSlot) -> bool) -> usize {
    let mut removed = 0;
    for slot in slots.iter_mut().filter(|slot| slot.in_use && matches(slot)) {
        slot.in_use = false;
        removed += 1;
    }
    removed
}

/// The live entries, for the cache view.
pub fn rows(slots: &[CacheSlot], now: SystemTime) -> Vec<CacheRow> {
    let now = micros(now);
    slots
        .iter()
        .filter(|slot| slot.live(now))
        .map(|slot| CacheRow {
            owner: slot.owner,
            identity: slot.identity(),
            cached_at: from_micros(slot.cached_at),
            expires_at: from_micros(slot.expires_at),
            hits: slot.hits,
        })
        .collect()
}

/// One server's calls, in one backend or (in shared memory) for the cluster.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Stats {
    pub calls: u64,
    pub cache_hits: u64,
    pub errors: u64,
    /// Attempts beyond the first, over all calls.
    pub retries: u64,
    pub total_time: Duration,
    pub max_time: Duration,
    last_error: FixedText<ERROR_MAX>,
    last_error_at: i64,
    last_active: i64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            calls: 0,
            cache_hits: 0,
            errors: 0,
            retries: 0,
            total_time: Duration::ZERO,
            max_time: Duration::ZERO,
            last_error: FixedText {
                len: 0,
                bytes: [0; ERROR_MAX],
            },
            last_error_at: 0,
            last_active: 0,
        }
    }
}

/// What one scan of one server did, to add to its stats.
pub enum Event<'a> {
    CacheHit,
    /// A call to STS: how long it took, how many attempts it made, and its error's message
    /// (free of secrets, as every FdwError message is).
    Call {
        time: Duration,
        attempts: u32,
        error: Option<&'a str>,
    },
}

impl Stats {
    pub fn record(&mut self, event: &Event, now: SystemTime) {
        self.last_active = micros(now);
        match *event {
            Event::CacheHit => self.cache_hits += 1,
            Event::Call {
                time,
                attempts,
                error,
            } => {
                self.calls += 1;
                self.retries += u64::from(attempts.saturating_sub(1));
                self.total_time += time;
                self.max_time = self.max_time.max(time);
                if let Some(message) = error {
                    self.errors += 1;
                    self.last_error.set(message);
                    self.last_error_at = micros(now);
                }
            }
        }
    }

    pub fn mean_time(&self) -> Duration {
        match self.calls {
            0 => Duration::ZERO,
            calls => self.total_time / calls as u32,
        }
    }

    pub fn last_error(&self) -> Option<(&str, SystemTime)> {
        (self.errors > 0).then(|| (self.last_error.as_str(), from_micros(self.last_error_at)))
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct StatsSlot {
    in_use: bool,
    pub database_id: u32,
    pub server_id: u32,
    pub stats: Stats,
}

/// Adds an event to a server's stats; a full table gives the least recently active
/// server's slot to this one.
pub fn record(
    slots: &mut [StatsSlot],
    database_id: u32,
    server_id: u32,
    event: &Event,
    now: SystemTime,
) {
    let index = slots
        .iter()
        .position(|slot| {
            slot.in_use && slot.database_id == database_id && slot.server_id == server_id
        })
        .or_else(|| slots.iter().position(|slot| !slot.in_use))
        .or_else(|| (0..slots.len()).min_by_key(|&index| slots[index].stats.last_active));
    let Some(index) = index else { return };
    let slot = &mut slots[index];
    if !(slot.in_use && slot.database_id == database_id && slot.server_id == server_id) {
        *slot = StatsSlot {
            in_use: true,
            database_id,
            server_id,
            stats: Stats::default(),
        };
    }
    slot.stats.record(event, now);
}

/// The servers' stats, for the stats view.
pub fn stats_rows(slots: &[StatsSlot]) -> Vec<StatsSlot> {
    slots.iter().filter(|slot| slot.in_use).copied().collect()
}

/// Forgets the stats of a database (of one server when `server_id` is given).
pub fn reset_stats(slots: &mut [StatsSlot], database_id: u32, server_id: Option<u32>) {
    for slot in slots.iter_mut() {
        if slot.database_id == database_id && server_id.is_none_or(|id| id == slot.server_id) {
            slot.in_use = false;
        }
    }
}

/// A table of `capacity` free slots (the glue zeroes shared memory, which is the same).
pub fn empty_cache(capacity: usize) -> Vec<CacheSlot> {
    vec![
        CacheSlot {
            in_use: false,
            key: [0; 32],
            owner: Owner::default(),
            server_source: 0,
            mapping_source: 0,
            cached_at: 0,
            expires_at: 0,
            last_used: 0,
            hits: 0,
            arn: FixedText {
                len: 0,
                bytes: [0; ARN_MAX],
            },
            user_id: FixedText {
                len: 0,
                bytes: [0; USER_ID_MAX],
            },
            account_id: FixedText {
                len: 0,
                bytes: [0; ACCOUNT_MAX],
            },
        };
        capacity
    ]
}

#[cfg(test)]
mod tests;
