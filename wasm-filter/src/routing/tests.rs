use super::*;
use crate::breaker::State;
use crate::config;
use crate::testutil::FakeStore;

fn cfg(both_open: &str) -> Config {
    let json = format!(
        r#"{{"rust_weight_bp": 5000,
            "backends": {{"python": {{"cluster": "py", "authority": "py"}}, "rust": {{"cluster": "rs", "authority": "rs"}}}},
            "breaker": {{"failure_threshold": 2, "recovery_ms": 1000, "both_open": "{both_open}"}}}}"#
    );
    config::parse(json.as_bytes()).unwrap()
}

fn clock(t: u64) -> impl Fn() -> Option<u64> {
    move || Some(t)
}

fn ticket_of(r: Route) -> Ticket {
    match r {
        Route::To(t) => t,
        Route::Reject { .. } => panic!("rejected"),
    }
}

fn fail(c: &Config, s: &FakeStore, b: Backend, t: u64, tr: &mut Vec<Transition>) {
    let ticket = ticket_of(decide(c, b, s, &clock(t), tr));
    assert_eq!(ticket.backend, b, "setup: request must reach {b:?}");
    report(c, &ticket, Outcome::Failure, s, &clock(t), tr);
}

#[test]
fn healthy_path_reads_once_and_writes_nothing() {
    let c = cfg("fail_open");
    let s = FakeStore::default();
    store::ensure(&s, store::key(Backend::Rust));
    let (gets, sets) = (*s.gets.borrow(), *s.sets.borrow());
    let mut tr = vec![];
    let t = ticket_of(decide(
        &c,
        Backend::Rust,
        &s,
        &|| panic!("closed needs no clock"),
        &mut tr,
    ));
    assert_eq!(
        t,
        Ticket {
            backend: Backend::Rust,
            fallback_from: None,
            failed_open: false,
            probe: false,
            clean: true
        }
    );
    report(
        &c,
        &t,
        Outcome::Success,
        &s,
        &|| panic!("success needs no clock"),
        &mut tr,
    );
    assert_eq!(
        *s.gets.borrow() - gets,
        1,
        "one shared-data read per request"
    );
    assert_eq!(*s.sets.borrow(), sets, "no write");
    assert!(tr.is_empty());
}

#[test]
fn open_circuit_falls_back_to_the_other_backend() {
    let c = cfg("fail_open");
    let s = FakeStore::default();
    let mut tr = vec![];
    fail(&c, &s, Backend::Rust, 10, &mut tr);
    fail(&c, &s, Backend::Rust, 11, &mut tr);
    assert_eq!(tr.len(), 1);
    assert_eq!((tr[0].0, tr[0].2.state), (Backend::Rust, State::Open));
    let t = ticket_of(decide(&c, Backend::Rust, &s, &clock(500), &mut tr));
    assert_eq!(
        (t.backend, t.fallback_from),
        (Backend::Python, Some(Backend::Rust))
    );
    // Python's breaker is untouched by Rust's failures.
    let t = ticket_of(decide(&c, Backend::Python, &s, &clock(500), &mut tr));
    assert_eq!((t.backend, t.fallback_from), (Backend::Python, None));
}

#[test]
fn half_open_probe_goes_to_the_preferred_backend_and_closes_it() {
    let c = cfg("fail_open");
    let s = FakeStore::default();
    let mut tr = vec![];
    fail(&c, &s, Backend::Rust, 0, &mut tr);
    fail(&c, &s, Backend::Rust, 0, &mut tr);
    let probe = ticket_of(decide(&c, Backend::Rust, &s, &clock(1000), &mut tr));
    assert!(probe.probe);
    assert_eq!(probe.backend, Backend::Rust);
    // While the probe is out, others fall back.
    let other = ticket_of(decide(&c, Backend::Rust, &s, &clock(1001), &mut tr));
    assert_eq!(other.fallback_from, Some(Backend::Rust));
    report(&c, &probe, Outcome::Success, &s, &clock(1002), &mut tr);
    let states: Vec<State> = tr.iter().map(|t| t.2.state).collect();
    assert_eq!(states, [State::Open, State::HalfOpen, State::Closed]);
    let t = ticket_of(decide(&c, Backend::Rust, &s, &clock(1003), &mut tr));
    assert_eq!((t.backend, t.probe, t.clean), (Backend::Rust, false, true));
}

#[test]
fn failed_probe_reopens() {
    let c = cfg("fail_open");
    let s = FakeStore::default();
    let mut tr = vec![];
    fail(&c, &s, Backend::Python, 0, &mut tr);
    fail(&c, &s, Backend::Python, 0, &mut tr);
    let probe = ticket_of(decide(&c, Backend::Python, &s, &clock(1000), &mut tr));
    report(&c, &probe, Outcome::Failure, &s, &clock(1500), &mut tr);
    assert_eq!(tr.last().map(|t| t.2.state), Some(State::Open));
    let t = ticket_of(decide(&c, Backend::Python, &s, &clock(2000), &mut tr));
    assert_eq!(
        t.backend,
        Backend::Rust,
        "reopened at 1500, recovers at 2500"
    );
}

#[test]
fn abandoned_probe_releases_its_slot() {
    let c = cfg("fail_open");
    let s = FakeStore::default();
    let mut tr = vec![];
    fail(&c, &s, Backend::Rust, 0, &mut tr);
    fail(&c, &s, Backend::Rust, 0, &mut tr);
    let probe = ticket_of(decide(&c, Backend::Rust, &s, &clock(1000), &mut tr));
    report(&c, &probe, Outcome::Abandoned, &s, &clock(1000), &mut tr);
    let again = ticket_of(decide(&c, Backend::Rust, &s, &clock(1001), &mut tr));
    assert!(again.probe && again.backend == Backend::Rust);
}

#[test]
fn both_open_fails_open_or_rejects_as_configured() {
    for (mode, rejects) in [("fail_open", false), ("reject", true)] {
        let c = cfg(mode);
        let s = FakeStore::default();
        let mut tr = vec![];
        for b in Backend::ALL {
            fail(&c, &s, b, 0, &mut tr);
            fail(&c, &s, b, 0, &mut tr);
        }
        let r = decide(&c, Backend::Rust, &s, &clock(10), &mut tr);
        if rejects {
            assert_eq!(
                r,
                Route::Reject {
                    preferred: Backend::Rust
                }
            );
        } else {
            let t = ticket_of(r);
            assert_eq!(
                (t.backend, t.failed_open, t.probe),
                (Backend::Rust, true, false)
            );
            // A fail-open success does not close the circuit: only probes do.
            report(&c, &t, Outcome::Success, &s, &clock(11), &mut tr);
            assert_eq!(
                store::load(&s, store::key(Backend::Rust)).breaker.state,
                State::Open
            );
        }
    }
}

#[test]
fn disabled_breaker_never_touches_shared_data() {
    let mut c = cfg("fail_open");
    c.breaker = None;
    let s = FakeStore::default();
    let mut tr = vec![];
    let t = ticket_of(decide(&c, Backend::Rust, &s, &clock(0), &mut tr));
    report(&c, &t, Outcome::Failure, &s, &clock(0), &mut tr);
    assert_eq!((*s.gets.borrow(), *s.sets.borrow()), (0, 0));
}

#[test]
fn broken_shared_data_lets_traffic_through() {
    let c = cfg("reject");
    let s = FakeStore {
        fail_gets: true,
        ..FakeStore::default()
    };
    let mut tr = vec![];
    let t = ticket_of(decide(&c, Backend::Python, &s, &clock(0), &mut tr));
    assert_eq!(t.backend, Backend::Python);
}

/// The services' error codes (docs/error-codes.json, written from their
/// `ErrorCode` enum): the breaker counts exactly the backend faults, and the
/// filter's own 503 speaks one of the codes with its status.
#[test]
fn breaker_failures_are_the_contracts_backend_faults() {
    let table: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/error-codes.json")).unwrap();
    let rows = table.as_array().unwrap();
    assert!(rows.len() >= 20, "{rows:?}");
    for row in rows {
        let status = u32::try_from(row["status"].as_u64().unwrap()).unwrap();
        let fault = row["backend_fault"].as_bool().unwrap();
        assert_eq!(backend_failed(status), fault, "{row}");
    }
    assert!(backend_failed(0), "no response is a failure");
    let body: serde_json::Value = serde_json::from_slice(BOTH_OPEN_BODY).unwrap();
    let code = body["error"]["code"].as_str().unwrap();
    let row = rows.iter().find(|r| r["code"] == code).unwrap();
    assert_eq!(row["status"].as_u64(), Some(u64::from(BOTH_OPEN_STATUS)));
}
