//! The `AttemptCounter` contract (failed logins, sign-ups), run against the
//! in-memory adapter and the MongoDB one on the real MongoDB-protocol test
//! server: counts within a window, capped just past the limit, windows that
//! end, take-backs, and concurrent replicas that each count once.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use service_runtime::identity::{AttemptCounter, InMemoryAttemptCounter, MongoAttemptCounter};
use test_support::{eventually, unique};

/// Two replicas' counters over the same counts.
struct Subject {
    one: Arc<dyn AttemptCounter>,
    other: Arc<dyn AttemptCounter>,
}

fn in_memory() -> Subject {
    let shared: Arc<dyn AttemptCounter> = Arc::new(InMemoryAttemptCounter::default());
    Subject {
        one: shared.clone(),
        other: shared,
    }
}

async fn mongodb(test: &str) -> Option<Subject> {
    let servers = test_support::real_servers(test)?;
    let db = test_support::fresh_database(&servers, "attempts_contract").await;
    let one = MongoAttemptCounter::new(&db).await.expect("counter");
    let other = MongoAttemptCounter::new(&db).await.expect("second counter");
    Some(Subject {
        one: Arc::new(one),
        other: Arc::new(other),
    })
}

test_support::store_contract!(
    "service-runtime";
    attempts_count_within_a_window_up_to_one_past_the_limit,
    a_window_ends_and_the_next_attempt_opens_a_new_one,
    taking_back_and_resetting_forget_attempts,
    concurrent_attempts_from_two_replicas_each_count_once,
);

const WINDOW: Duration = Duration::from_secs(900);

mod checks {
    use super::*;

    pub async fn attempts_count_within_a_window_up_to_one_past_the_limit(s: Subject) {
        let (key, other_key) = (unique("login:account:ada"), unique("login:address"));
        let mut counts = Vec::new();
        for _ in 0..5 {
            let c = s.one.hit(&key, 3, WINDOW).await.unwrap();
            assert!(
                c.remaining > Duration::ZERO && c.remaining <= WINDOW,
                "{c:?}"
            );
            counts.push(c.count);
        }
        assert_eq!(counts, [1, 2, 3, 4, 4], "capped at limit + 1");
        // Another replica sees the same window; another key has its own.
        assert_eq!(s.other.hit(&key, 3, WINDOW).await.unwrap().count, 4);
        assert_eq!(s.other.hit(&other_key, 3, WINDOW).await.unwrap().count, 1);
        // The window runs from its first attempt: later ones do not extend it.
        let first = s.one.hit(&unique("k"), 3, WINDOW).await.unwrap();
        let later = s.one.hit(&key, 3, WINDOW).await.unwrap();
        assert!(later.remaining <= first.remaining, "{later:?} vs {first:?}");
    }

    pub async fn a_window_ends_and_the_next_attempt_opens_a_new_one(s: Subject) {
        let key = unique("signup:address");
        let short = Duration::from_millis(300);
        assert_eq!(s.one.hit(&key, 2, short).await.unwrap().count, 1);
        // Hit until a hit opens a new window (count back to 1): the old one
        // ended; each hit of the old one counted up to the cap meanwhile.
        let fresh = eventually("a new window", Duration::from_secs(30), || {
            let (counter, key) = (&s.other, &key);
            async move {
                let c = counter.hit(key, 2, short).await.unwrap();
                assert!(c.count <= 3);
                (c.count == 1).then_some(c)
            }
        })
        .await;
        assert!(fresh.remaining <= short);
    }

    pub async fn taking_back_and_resetting_forget_attempts(s: Subject) {
        let key = unique("login:address");
        for _ in 0..3 {
            s.one.hit(&key, 10, WINDOW).await.unwrap();
        }
        s.other.unhit(&key).await.unwrap();
        assert_eq!(s.one.hit(&key, 10, WINDOW).await.unwrap().count, 3);
        s.other.reset(&key).await.unwrap();
        assert_eq!(s.one.hit(&key, 10, WINDOW).await.unwrap().count, 1);
        // Taking back never goes below nothing; unknown keys are fine.
        s.one.unhit(&key).await.unwrap();
        s.one.unhit(&key).await.unwrap();
        assert_eq!(s.one.hit(&key, 10, WINDOW).await.unwrap().count, 1);
        s.one.unhit(&unique("never")).await.unwrap();
        s.one.reset(&unique("never")).await.unwrap();
    }

    pub async fn concurrent_attempts_from_two_replicas_each_count_once(s: Subject) {
        const ATTEMPTS: u32 = 24;
        let key = unique("login:account:bob");
        let tasks: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let counter = if i % 2 == 0 {
                    s.one.clone()
                } else {
                    s.other.clone()
                };
                let key = key.clone();
                tokio::spawn(async move { counter.hit(&key, 100, WINDOW).await.unwrap().count })
            })
            .collect();
        let mut seen = BTreeSet::new();
        for t in tasks {
            seen.insert(t.await.unwrap());
        }
        assert_eq!(
            seen,
            (1..=ATTEMPTS).collect::<BTreeSet<_>>(),
            "every attempt saw its own count: none lost, none doubled"
        );
    }
}
