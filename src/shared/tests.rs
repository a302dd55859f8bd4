use super::*;
use crate::cache::tests::identity;

fn settings(secret: &str) -> ConnectionSettings {
    crate::cache::tests::settings(secret, Duration::from_secs(300))
}

fn fill(identity: &CallerIdentity, database_id: u32, server_source: u32) -> Fill<'_> {
    Fill {
        owner: Owner {
            database_id,
            server_id: 7,
            user_id: 10,
        },
        server_source,
        mapping_source: 0,
        identity,
        lifetime: Duration::from_secs(60),
    }
}

#[test]
fn keys_differ_by_database_server_and_credentials() {
    let a = settings_key(1, 7, &settings("a"));
    assert_eq!(a, settings_key(1, 7, &settings("a")));
    assert_ne!(a, settings_key(2, 7, &settings("a")));
    assert_ne!(a, settings_key(1, 8, &settings("a")));
    assert_ne!(a, settings_key(1, 7, &settings("b")));
}

#[test]
fn entries_are_found_by_key_until_they_expire_and_count_hits() {
    let mut slots = empty_cache(4);
    let now = SystemTime::now();
    let key = settings_key(1, 7, &settings("a"));
    let arn = identity("arn:a");
    assert!(get(&mut slots, &key, now, true).is_none());
    assert!(!put(&mut slots, &key, fill(&arn, 1, 5), now));
    let (found, remaining) = get(&mut slots, &key, now + Duration::from_secs(10), true).unwrap();
    assert_eq!(found, arn);
    assert_eq!(remaining, Duration::from_secs(50));
    get(&mut slots, &key, now, false).unwrap();
    assert_eq!(rows(&slots, now)[0].hits, 1);
    assert!(get(&mut slots, &key, now + Duration::from_secs(60), true).is_none());
    assert!(rows(&slots, now + Duration::from_secs(60)).is_empty());
}

#[test]
fn a_full_table_evicts_the_least_recently_used_entry() {
    let mut slots = empty_cache(2);
    let now = SystemTime::now();
    let keys: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|secret| settings_key(1, 7, &settings(secret)))
        .collect();
    let arn = identity("arn:x");
    put(&mut slots, &keys[0], fill(&arn, 1, 5), now);
    put(
        &mut slots,
        &keys[1],
        fill(&arn, 1, 5),
        now + Duration::from_secs(1),
    );
    get(&mut slots, &keys[0], now + Duration::from_secs(2), true).unwrap();
    assert!(put(
        &mut slots,
        &keys[2],
        fill(&arn, 1, 5),
        now + Duration::from_secs(3)
    ));
    let later = now + Duration::from_secs(4);
    assert!(get(&mut slots, &keys[0], later, false).is_some());
    assert!(get(&mut slots, &keys[1], later, false).is_none());
    assert!(get(&mut slots, &keys[2], later, false).is_some());
    // Refilling a key reuses its slot.
    assert!(!put(&mut slots, &keys[2], fill(&arn, 1, 5), later));
    assert_eq!(rows(&slots, later).len(), 2);
}

#[test]
fn invalidation_and_clearing_stay_in_their_database() {
    let mut slots = empty_cache(4);
    let now = SystemTime::now();
    let arn = identity("arn:a");
    put(
        &mut slots,
        &settings_key(1, 7, &settings("a")),
        fill(&arn, 1, 5),
        now,
    );
    put(
        &mut slots,
        &settings_key(2, 7, &settings("a")),
        fill(&arn, 2, 5),
        now,
    );
    put(
        &mut slots,
        &settings_key(1, 7, &settings("b")),
        fill(&arn, 1, 6),
        now,
    );
    assert_eq!(invalidate(&mut slots, 1, Source::Mapping(5)), 0);
    assert_eq!(invalidate(&mut slots, 1, Source::Server(5)), 1);
    assert_eq!(rows(&slots, now).len(), 2);
    assert_eq!(clear(&mut slots, 1, now), 1);
    let left = rows(&slots, now);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].owner.database_id, 2);
    assert_eq!(invalidate(&mut slots, 2, Source::Any), 1);
}

#[test]
fn long_text_is_cut_at_a_character_boundary() {
    let mut text = FixedText::<4> {
        len: 0,
        bytes: [0; 4],
    };
    text.set("abé!");
    assert_eq!(text.as_str(), "abé");
    text.set("abcdé");
    assert_eq!(text.as_str(), "abcd");
}

#[test]
fn stats_add_up_calls_retries_errors_and_times() {
    let mut slots = vec![StatsSlot::default(); 2];
    let now = SystemTime::now();
    let call = |ms, attempts, error| Event::Call {
        time: Duration::from_millis(ms),
        attempts,
        error,
    };
    record(&mut slots, 1, 7, &call(10, 1, None), now);
    record(&mut slots, 1, 7, &call(30, 3, Some("boom")), now);
    record(&mut slots, 1, 7, &Event::CacheHit, now);
    let stats = stats_rows(&slots)[0].stats;
    assert_eq!(
        (stats.calls, stats.cache_hits, stats.errors, stats.retries),
        (2, 1, 1, 2)
    );
    assert_eq!(stats.mean_time(), Duration::from_millis(20));
    assert_eq!(stats.max_time, Duration::from_millis(30));
    assert_eq!(stats.last_error().unwrap().0, "boom");
    // A full table gives the least recently active server's slot away.
    record(
        &mut slots,
        1,
        8,
        &Event::CacheHit,
        now + Duration::from_secs(1),
    );
    record(
        &mut slots,
        2,
        7,
        &Event::CacheHit,
        now + Duration::from_secs(2),
    );
    let servers: Vec<_> = stats_rows(&slots)
        .iter()
        .map(|slot| (slot.database_id, slot.server_id))
        .collect();
    assert_eq!(servers.len(), 2);
    assert!(!servers.contains(&(1, 7)));
    reset_stats(&mut slots, 1, None);
    assert_eq!(stats_rows(&slots).len(), 1);
}
