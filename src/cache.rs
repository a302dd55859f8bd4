//! The per-backend identity cache. A caller identity depends only on the credentials and
//! where they are sent, so an entry is keyed by the effective connection settings (server
//! options and user mapping keys together): altering either gives a new key. Each entry also
//! remembers the catalog rows it came from (as hash values of Postgres' syscache), so that
//! an ALTER or DROP of that server or user mapping, in any session, forgets it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::row::CallerIdentity;
use crate::shared::{CacheRow, Owner};
use crate::sts::ConnectionSettings;

#[derive(Debug, Clone)]
struct Entry {
    identity: CallerIdentity,
    expires_at: Instant,
    /// Syscache hash values of the server and user mapping the entry was filled through.
    sources: Vec<u32>,
    /// For the cache view: whose entry it is, when it was filled, how often it answered.
    owner: Owner,
    cached_at: SystemTime,
    lifetime: Duration,
    hits: u64,
}

/// How long an answer may be reused: `cache_ttl`, or until the credentials that produced it
/// expire, whichever comes first (zero: not at all).
pub fn lifetime(
    settings: &ConnectionSettings,
    credentials_expiry: Option<SystemTime>,
    wall_clock_now: SystemTime,
) -> Duration {
    if !settings.server.caching() {
        return Duration::ZERO;
    }
    let ttl = settings.server.cache_ttl;
    match credentials_expiry {
        Some(expiry) => ttl.min(
            expiry
                .duration_since(wall_clock_now)
                .unwrap_or(Duration::ZERO),
        ),
        None => ttl,
    }
}

/// What the cache holds for one settings key, for EXPLAIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Caching is off for the server (`cache 'false'` or `cache_ttl '0'`).
    Disabled,
    /// Nothing usable: the scan will call STS.
    Miss,
    /// A scan now would be answered from the cache; the entry lives this much longer.
    Hit { remaining: Duration },
}

#[derive(Debug, Default)]
pub struct IdentityCache {
    entries: HashMap<ConnectionSettings, Entry>,
}

impl IdentityCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached identity for these settings, if caching is on and the entry is still fresh.
    pub fn get(&self, settings: &ConnectionSettings, now: Instant) -> Option<&CallerIdentity> {
        if !settings.server.caching() {
            return None;
        }
        self.entries
            .get(settings)
            .filter(|entry| entry.expires_at > now)
            .map(|entry| &entry.identity)
    }

    /// As [`IdentityCache::get`], for a scan the entry answers: counts the hit.
    pub fn hit(&mut self, settings: &ConnectionSettings, now: Instant) -> Option<CallerIdentity> {
        if !settings.server.caching() {
            return None;
        }
        let entry = self
            .entries
            .get_mut(settings)
            .filter(|entry| entry.expires_at > now)?;
        entry.hits += 1;
        Some(entry.identity.clone())
    }

    pub fn lookup(&self, settings: &ConnectionSettings, now: Instant) -> Lookup {
        if !settings.server.caching() {
            return Lookup::Disabled;
        }
        match self.entries.get(settings) {
            Some(entry) if entry.expires_at > now => Lookup::Hit {
                remaining: entry.expires_at - now,
            },
            _ => Lookup::Miss,
        }
    }

    /// Stores a fresh answer for its [`lifetime`]; `sources` are the syscache hash values of
    /// the catalog rows it depends on. Expired entries are dropped on the way.
    pub fn put(
        &mut self,
        settings: &ConnectionSettings,
        identity: CallerIdentity,
        credentials_expiry: Option<SystemTime>,
        sources: &[u32],
        now: Instant,
        wall_clock_now: SystemTime,
    ) {
        let lifetime = lifetime(settings, credentials_expiry, wall_clock_now);
        self.put_for(Owner::default(), settings, identity, lifetime, sources, now);
    }

    /// [`IdentityCache::put`] with the lifetime worked out, and the owner the cache view
    /// shows.
    pub fn put_for(
        &mut self,
        owner: Owner,
        settings: &ConnectionSettings,
        identity: CallerIdentity,
        lifetime: Duration,
        sources: &[u32],
        now: Instant,
    ) {
        self.entries.retain(|_, entry| entry.expires_at > now);
        if lifetime.is_zero() {
            self.entries.remove(settings);
            return;
        }
        self.entries.insert(
            settings.clone(),
            Entry {
                identity,
                expires_at: now + lifetime,
                sources: sources.to_vec(),
                owner,
                cached_at: SystemTime::now(),
                lifetime,
                hits: 0,
            },
        );
    }

    /// The live entries, for the cache view.
    pub fn rows(&self, now: Instant) -> Vec<CacheRow> {
        self.entries
            .values()
            .filter(|entry| entry.expires_at > now)
            .map(|entry| CacheRow {
                owner: entry.owner,
                identity: entry.identity.clone(),
                cached_at: entry.cached_at,
                expires_at: entry.cached_at + entry.lifetime,
                hits: entry.hits,
            })
            .collect()
    }

    /// Forgets the entries that depend on the catalog row with this syscache hash value
    /// (0, as Postgres passes for a full reset, forgets everything); returns how many.
    pub fn invalidate(&mut self, source: u32) -> usize {
        let before = self.entries.len();
        if source == 0 {
            self.entries.clear();
        } else {
            self.entries
                .retain(|_, entry| !entry.sources.contains(&source));
        }
        before - self.entries.len()
    }

    /// Empties the cache; returns how many entries it held.
    pub fn clear(&mut self) -> usize {
        let count = self.entries.len();
        self.entries.clear();
        count
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::options::{ServerOptions, StaticKeys};

    pub(crate) fn settings(secret: &str, ttl: Duration) -> ConnectionSettings {
        ConnectionSettings {
            server: ServerOptions {
                cache_ttl: ttl,
                ..ServerOptions::default()
            },
            keys: Some(StaticKeys {
                access_key_id: "AKIA".into(),
                secret_access_key: secret.into(),
                session_token: None,
            }),
        }
    }

    pub(crate) fn identity(arn: &str) -> CallerIdentity {
        CallerIdentity {
            arn: arn.into(),
            user_id: "AIDA".into(),
            account_id: "123456789012".into(),
        }
    }

    #[test]
    fn entries_live_for_the_ttl() {
        let mut cache = IdentityCache::new();
        let key = settings("a", Duration::from_secs(300));
        let t0 = Instant::now();
        let wall = SystemTime::now();
        assert_eq!(cache.lookup(&key, t0), Lookup::Miss);
        cache.put(&key, identity("arn:a"), None, &[1], t0, wall);
        assert_eq!(
            cache.get(&key, t0 + Duration::from_secs(299)).unwrap().arn,
            "arn:a"
        );
        assert_eq!(
            cache.lookup(&key, t0 + Duration::from_secs(100)),
            Lookup::Hit {
                remaining: Duration::from_secs(200)
            }
        );
        assert!(cache.get(&key, t0 + Duration::from_secs(300)).is_none());
    }

    #[test]
    fn other_credentials_are_another_entry() {
        let mut cache = IdentityCache::new();
        let now = Instant::now();
        cache.put(
            &settings("a", Duration::from_secs(60)),
            identity("arn:a"),
            None,
            &[1],
            now,
            SystemTime::now(),
        );
        assert!(cache
            .get(&settings("b", Duration::from_secs(60)), now)
            .is_none());
        // A changed option (here the TTL itself) is a changed key too.
        assert!(cache
            .get(&settings("a", Duration::from_secs(61)), now)
            .is_none());
    }

    #[test]
    fn expiring_credentials_expire_their_entry() {
        let mut cache = IdentityCache::new();
        let key = settings("a", Duration::from_secs(300));
        let now = Instant::now();
        let wall = SystemTime::now();
        cache.put(
            &key,
            identity("arn:a"),
            Some(wall + Duration::from_secs(30)),
            &[1],
            now,
            wall,
        );
        assert!(cache.get(&key, now + Duration::from_secs(29)).is_some());
        assert!(cache.get(&key, now + Duration::from_secs(31)).is_none());
        // Already expired credentials are not cached at all.
        cache.put(
            &key,
            identity("arn:a"),
            Some(wall - Duration::from_secs(1)),
            &[1],
            now,
            wall,
        );
        assert!(cache.get(&key, now).is_none());
    }

    #[test]
    fn a_zero_ttl_or_cache_false_disables_caching() {
        let mut cache = IdentityCache::new();
        let now = Instant::now();
        let off = settings("a", Duration::ZERO);
        cache.put(&off, identity("arn:a"), None, &[1], now, SystemTime::now());
        assert_eq!(cache.lookup(&off, now), Lookup::Disabled);
        assert!(cache.is_empty());
        let mut disabled = settings("a", Duration::from_secs(60));
        disabled.server.cache = false;
        assert_eq!(cache.lookup(&disabled, now), Lookup::Disabled);
    }

    #[test]
    fn invalidation_forgets_only_what_depends_on_the_row() {
        let mut cache = IdentityCache::new();
        let now = Instant::now();
        let wall = SystemTime::now();
        let ttl = Duration::from_secs(60);
        cache.put(
            &settings("a", ttl),
            identity("arn:a"),
            None,
            &[10, 11],
            now,
            wall,
        );
        cache.put(
            &settings("b", ttl),
            identity("arn:b"),
            None,
            &[20, 21],
            now,
            wall,
        );
        assert_eq!(cache.invalidate(99), 0);
        assert_eq!(cache.invalidate(11), 1);
        assert!(cache.get(&settings("a", ttl), now).is_none());
        assert!(cache.get(&settings("b", ttl), now).is_some());
        cache.put(
            &settings("a", ttl),
            identity("arn:a"),
            None,
            &[10, 11],
            now,
            wall,
        );
        assert_eq!(cache.invalidate(0), 2);
    }

    #[test]
    fn clearing_and_pruning() {
        let mut cache = IdentityCache::new();
        let now = Instant::now();
        let wall = SystemTime::now();
        cache.put(
            &settings("a", Duration::from_secs(1)),
            identity("arn:a"),
            None,
            &[1],
            now,
            wall,
        );
        cache.put(
            &settings("b", Duration::from_secs(60)),
            identity("arn:b"),
            None,
            &[1],
            now,
            wall,
        );
        assert_eq!(cache.len(), 2);
        // Putting after the first expired drops it.
        cache.put(
            &settings("c", Duration::from_secs(60)),
            identity("arn:c"),
            None,
            &[1],
            now + Duration::from_secs(2),
            wall,
        );
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.clear(), 2);
        assert!(cache.is_empty());
    }
}
