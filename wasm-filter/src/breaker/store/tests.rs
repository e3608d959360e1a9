use super::*;
use crate::breaker::{BreakerConfig, State};
use crate::testutil::FakeStore;

const CFG: BreakerConfig = BreakerConfig {
    failure_threshold: 3,
    recovery_ms: 1000,
    half_open_max_probes: 1,
    half_open_successes: 1,
};

#[test]
fn ensure_creates_once_and_load_reads_back() {
    let s = FakeStore::default();
    let k = key(Backend::Rust);
    ensure(&s, k);
    ensure(&s, k);
    assert_eq!(*s.sets.borrow(), 1);
    let snap = load(&s, k);
    assert_eq!(snap.breaker, Breaker::default());
    assert_eq!(snap.cas, Some(1));
}

#[test]
fn unchanged_breaker_is_not_written() {
    let s = FakeStore::default();
    let k = key(Backend::Python);
    ensure(&s, k);
    let before = *s.sets.borrow();
    let u = update(&s, k, None, |b| b.admit(&CFG, 5));
    assert!(u.stored);
    assert_eq!(
        *s.sets.borrow(),
        before,
        "a closed breaker admits without a write"
    );
}

#[test]
fn failures_accumulate_across_updates_and_open() {
    let s = FakeStore::default();
    let k = key(Backend::Rust);
    ensure(&s, k);
    for i in 0..3 {
        let u = update(&s, k, None, |b| b.on_failure(&CFG, false, 100 + i));
        assert!(u.stored);
    }
    let b = load(&s, k).breaker;
    assert_eq!(b.state, State::Open);
    assert_eq!(b.opened_at_ms, 102);
}

#[test]
fn cas_mismatch_is_retried_on_fresh_data() {
    let s = FakeStore::default();
    let k = key(Backend::Rust);
    ensure(&s, k);
    let stale = load(&s, k);
    // Someone else records a failure after our read.
    update(&s, k, None, |b| b.on_failure(&CFG, false, 1));
    let u = update(&s, k, Some(stale), |b| b.on_failure(&CFG, false, 2));
    assert!(u.stored);
    assert_eq!(
        load(&s, k).breaker.consecutive_failures,
        2,
        "the retry built on the other write"
    );
}

#[test]
fn gives_up_after_bounded_attempts_without_panicking() {
    let s = FakeStore::default();
    let k = key(Backend::Rust);
    ensure(&s, k);
    *s.interfering_writes.borrow_mut() = 1000;
    let u = update(&s, k, None, |b| b.on_failure(&CFG, false, 1));
    assert!(!u.stored);
    assert_eq!(*s.sets.borrow(), 1 + MAX_ATTEMPTS as u32);
}

#[test]
fn only_one_worker_wins_the_half_open_probe() {
    let s = FakeStore::default();
    let k = key(Backend::Rust);
    ensure(&s, k);
    for t in 0..3 {
        update(&s, k, None, |b| b.on_failure(&CFG, false, t));
    }
    // Two workers read the open breaker, then both try to admit after recovery.
    let a = load(&s, k);
    let b = load(&s, k);
    let first = update(&s, k, Some(a), |br| br.admit(&CFG, 5000));
    let second = update(&s, k, Some(b), |br| br.admit(&CFG, 5000));
    assert_eq!(first.value, crate::breaker::Admission::Probe);
    assert_eq!(second.value, crate::breaker::Admission::Deny);
}

#[test]
fn unreadable_store_reads_as_closed() {
    let s = FakeStore {
        fail_gets: true,
        ..FakeStore::default()
    };
    assert_eq!(load(&s, key(Backend::Rust)).breaker.state, State::Closed);
    s.map.borrow_mut().insert("x".into(), (vec![9, 9, 9], 1));
    let s2 = FakeStore::default();
    s2.map.borrow_mut().insert("x".into(), (vec![9, 9, 9], 1));
    assert_eq!(load(&s2, "x").breaker, Breaker::default());
}

#[test]
fn cache_serves_reads_without_the_host_until_cleared() {
    let s = Cached::new(FakeStore::default());
    let k = key(Backend::Rust);
    ensure(&s, k);
    load(&s, k);
    let gets = *s.inner.gets.borrow();
    for _ in 0..10 {
        load(&s, k);
    }
    assert_eq!(*s.inner.gets.borrow(), gets, "cached");
    s.clear();
    load(&s, k);
    assert_eq!(*s.inner.gets.borrow(), gets + 1);
}

#[test]
fn cache_reads_fresh_after_a_write_and_on_cas_mismatch() {
    let a = Cached::new(FakeStore::default());
    let k = key(Backend::Rust);
    ensure(&a, k);
    // Worker A caches a closed breaker.
    assert_eq!(load(&a, k).breaker.state, State::Closed);
    // Another worker opens it behind A's back.
    for t in 0..3 {
        update(&a.inner, k, None, |b| b.on_failure(&CFG, false, t));
    }
    assert_eq!(
        load(&a, k).breaker.state,
        State::Closed,
        "stale until cleared or written"
    );
    // A's own failure: the CAS on the stale token fails, the retry reads fresh data.
    let u = update(&a, k, None, |b| b.on_failure(&CFG, false, 10));
    assert!(u.stored);
    assert_eq!(u.before.state, State::Open);
    assert_eq!(
        load(&a, k).breaker.state,
        State::Open,
        "fresh after the write"
    );
}
