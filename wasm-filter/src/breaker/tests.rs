use super::*;

const CFG: BreakerConfig = BreakerConfig {
    failure_threshold: 3,
    recovery_ms: 1000,
    half_open_max_probes: 2,
    half_open_successes: 2,
};

fn opened_at(t: u64) -> Breaker {
    let mut b = Breaker::default();
    for _ in 0..CFG.failure_threshold {
        b.on_failure(&CFG, false, t);
    }
    assert_eq!(b.state, State::Open);
    b
}

#[test]
fn closed_admits_without_the_clock_and_without_change() {
    let mut b = Breaker::default();
    assert!(!b.needs_clock());
    assert_eq!(b.admit(&CFG, 0), Admission::Allow);
    assert_eq!(b, Breaker::default());
}

#[test]
fn consecutive_failures_open_and_a_success_resets_the_count() {
    let mut b = Breaker::default();
    b.on_failure(&CFG, false, 1);
    b.on_failure(&CFG, false, 2);
    b.on_success(&CFG, false);
    assert_eq!(b.consecutive_failures, 0);
    b.on_failure(&CFG, false, 3);
    b.on_failure(&CFG, false, 4);
    assert_eq!(b.state, State::Closed);
    b.on_failure(&CFG, false, 5);
    assert_eq!(b.state, State::Open);
    assert_eq!(b.opened_at_ms, 5);
    assert!(b.needs_clock());
}

#[test]
fn open_denies_until_recovery_then_admits_limited_probes() {
    let mut b = opened_at(100);
    assert_eq!(b.admit(&CFG, 100), Admission::Deny);
    assert_eq!(b.admit(&CFG, 1099), Admission::Deny);
    assert_eq!(b.admit(&CFG, 1100), Admission::Probe);
    assert_eq!(b.state, State::HalfOpen);
    assert_eq!(b.admit(&CFG, 1101), Admission::Probe);
    assert_eq!(
        b.admit(&CFG, 1102),
        Admission::Deny,
        "max 2 probes in flight"
    );
    assert_eq!(b.probes_in_flight, 2);
}

#[test]
fn probe_successes_close_the_circuit() {
    let mut b = opened_at(0);
    assert_eq!(b.admit(&CFG, 1000), Admission::Probe);
    b.on_success(&CFG, true);
    assert_eq!(b.state, State::HalfOpen, "needs 2 successes");
    assert_eq!(b.admit(&CFG, 1001), Admission::Probe);
    b.on_success(&CFG, true);
    assert_eq!(b, Breaker::default());
}

#[test]
fn a_probe_failure_reopens_with_a_new_recovery_time() {
    let mut b = opened_at(0);
    assert_eq!(b.admit(&CFG, 1000), Admission::Probe);
    b.on_failure(&CFG, true, 1500);
    assert_eq!(b.state, State::Open);
    assert_eq!(b.opened_at_ms, 1500);
    assert_eq!(b.admit(&CFG, 2000), Admission::Deny);
    assert_eq!(b.admit(&CFG, 2500), Admission::Probe);
}

#[test]
fn stragglers_from_before_opening_do_not_move_the_state() {
    let mut b = opened_at(0);
    let open = b;
    b.on_success(&CFG, false);
    b.on_failure(&CFG, false, 10);
    assert_eq!(b, open);
    assert_eq!(b.admit(&CFG, 1000), Admission::Probe);
    let half = b;
    b.on_success(&CFG, false);
    b.on_failure(&CFG, false, 1001);
    assert_eq!(b, half, "only probes decide a half-open circuit");
}

#[test]
fn abandoned_probe_frees_its_slot_and_lost_probes_expire() {
    let mut b = opened_at(0);
    assert_eq!(b.admit(&CFG, 1000), Admission::Probe);
    assert_eq!(b.admit(&CFG, 1000), Admission::Probe);
    assert_eq!(b.admit(&CFG, 1000), Admission::Deny);
    b.on_abandoned(true);
    assert_eq!(b.admit(&CFG, 1000), Admission::Probe);
    // Both probes vanish: after another recovery period new probes may go.
    assert_eq!(b.admit(&CFG, 1999), Admission::Deny);
    assert_eq!(b.admit(&CFG, 2000), Admission::Probe);
}

#[test]
fn would_admit_does_not_take_a_slot() {
    let b = opened_at(0);
    assert!(!b.would_admit(&CFG, 10));
    assert!(b.would_admit(&CFG, 1000));
    assert_eq!(b.state, State::Open);
}

#[test]
fn encoding_round_trips_and_rejects_foreign_bytes() {
    let mut b = opened_at(123_456_789_000);
    b.admit(&CFG, 123_456_790_500);
    b.on_success(&CFG, true);
    let bytes = b.encode();
    assert_eq!(Breaker::decode(&bytes), Some(b));
    assert_eq!(
        Breaker::decode(&Breaker::default().encode()),
        Some(Breaker::default())
    );
    assert_eq!(Breaker::decode(&bytes[..29]), None);
    let mut wrong_version = bytes;
    wrong_version[0] = 9;
    assert_eq!(Breaker::decode(&wrong_version), None);
    let mut wrong_state = bytes;
    wrong_state[1] = 7;
    assert_eq!(Breaker::decode(&wrong_state), None);
    assert_eq!(Breaker::decode(b""), None);
}

#[test]
fn full_cycle_closed_open_half_open_closed() {
    let cfg = BreakerConfig {
        half_open_max_probes: 1,
        half_open_successes: 1,
        ..CFG
    };
    let mut b = Breaker::default();
    let mut states = vec![b.state];
    for t in 0..3 {
        b.on_failure(&cfg, false, t);
    }
    states.push(b.state);
    assert_eq!(b.admit(&cfg, 2002), Admission::Probe);
    states.push(b.state);
    assert_eq!(b.admit(&cfg, 2003), Admission::Deny);
    b.on_success(&cfg, true);
    states.push(b.state);
    assert_eq!(
        states,
        [State::Closed, State::Open, State::HalfOpen, State::Closed]
    );
}
