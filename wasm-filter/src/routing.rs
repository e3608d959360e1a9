//! Per-request routing: the split's choice, then the circuit breakers, then
//! the fallback. Host-independent: shared data and the clock come in as
//! arguments, so the whole decision is unit tested.

use crate::breaker::store::{self, SharedData};
use crate::breaker::{Admission, Breaker, BreakerConfig};
use crate::config::{Backend, BothOpen, Config};

/// Whether a response counts against its backend's circuit: no response
/// (status 0: reset, timeout) or a 5xx, exactly the contract's codes whose
/// `backend_fault` is true (docs/error-codes.json, from the services'
/// `ErrorCode`). A client's mistake (4xx) never opens a circuit.
#[inline]
pub fn backend_failed(status: u32) -> bool {
    status == 0 || status >= 500
}

/// The answer when both circuits are open and `both_open: reject`: the
/// contract's `not_ready` (docs/contract.md), as a draining service gives it.
pub const BOTH_OPEN_STATUS: u32 = 503;
pub const BOTH_OPEN_BODY: &[u8] =
    br#"{"error": {"code": "not_ready", "message": "both backends are unavailable (circuits open)"}}"#;

/// Where one request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    To(Ticket),
    /// Both circuits open and `both_open: reject`.
    Reject {
        preferred: Backend,
    },
}

/// What the response side needs to report the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub backend: Backend,
    /// Set when `backend` is not the split's choice because that circuit was open.
    pub fallback_from: Option<Backend>,
    /// Both circuits open, sent to the split's choice anyway (`fail_open`).
    pub failed_open: bool,
    /// Admitted as a half-open probe: its outcome decides the circuit.
    pub probe: bool,
    /// The breaker read closed with no failures: a success needs no write.
    pub clean: bool,
}

/// A state change written to shared data: `(backend, before, after)`.
pub type Transition = (Backend, Breaker, Breaker);

/// How a request ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// No answer the breaker can judge (the client went away).
    Abandoned,
}

/// Decides the backend for a request the split sent to `preferred`.
/// Reads one shared-data key on the common path and writes nothing unless a
/// circuit changes state (open -> half-open when a probe is admitted).
pub fn decide(
    cfg: &Config,
    preferred: Backend,
    shared: &dyn SharedData,
    now_ms: &dyn Fn() -> Option<u64>,
    transitions: &mut Vec<Transition>,
) -> Route {
    let Some(bcfg) = &cfg.breaker else {
        return Route::To(Ticket {
            backend: preferred,
            fallback_from: None,
            failed_open: false,
            probe: false,
            clean: true,
        });
    };
    if let Some(t) = admit(bcfg, preferred, shared, now_ms, transitions) {
        return Route::To(t);
    }
    let other = preferred.other();
    if let Some(t) = admit(bcfg, other, shared, now_ms, transitions) {
        return Route::To(Ticket {
            fallback_from: Some(preferred),
            ..t
        });
    }
    match cfg.both_open {
        BothOpen::FailOpen => Route::To(Ticket {
            backend: preferred,
            fallback_from: None,
            failed_open: true,
            probe: false,
            clean: false,
        }),
        BothOpen::Reject => Route::Reject { preferred },
    }
}

fn admit(
    bcfg: &BreakerConfig,
    backend: Backend,
    shared: &dyn SharedData,
    now_ms: &dyn Fn() -> Option<u64>,
    transitions: &mut Vec<Transition>,
) -> Option<Ticket> {
    let key = store::key(backend);
    let snap = store::load(shared, key);
    let ticket = |probe, clean| Ticket {
        backend,
        fallback_from: None,
        failed_open: false,
        probe,
        clean,
    };
    if !snap.breaker.needs_clock() {
        return Some(ticket(false, snap.breaker.consecutive_failures == 0));
    }
    // Without a clock the breaker cannot judge recovery: let traffic through.
    let Some(now) = now_ms() else {
        return Some(ticket(false, false));
    };
    let u = store::update(shared, key, Some(snap), |b| b.admit(bcfg, now));
    if u.before.state != u.after.state && u.stored {
        transitions.push((backend, u.before, u.after));
    }
    match (u.value, u.stored) {
        (Admission::Allow, _) => Some(ticket(false, false)),
        (Admission::Probe, true) => Some(ticket(true, false)),
        // A probe slot we could not store is not ours.
        (Admission::Probe, false) | (Admission::Deny, _) => None,
    }
}

/// Feeds a request's outcome to the breaker of the backend it went to.
/// A success on a clean breaker costs nothing; anything else is one CAS
/// read-modify-write, written only if the breaker changes.
pub fn report(
    cfg: &Config,
    ticket: &Ticket,
    result: Outcome,
    shared: &dyn SharedData,
    now_ms: &dyn Fn() -> Option<u64>,
    transitions: &mut Vec<Transition>,
) {
    let Some(bcfg) = &cfg.breaker else { return };
    let probe = ticket.probe;
    let now = match result {
        Outcome::Success if ticket.clean && !probe => return,
        Outcome::Abandoned if !probe => return,
        Outcome::Failure => match now_ms() {
            Some(now) => now,
            None => return,
        },
        _ => 0,
    };
    let key = store::key(ticket.backend);
    let u = store::update(shared, key, None, |b| match result {
        Outcome::Success => b.on_success(bcfg, probe),
        Outcome::Failure => b.on_failure(bcfg, probe, now),
        Outcome::Abandoned => b.on_abandoned(probe),
    });
    if u.before.state != u.after.state && u.stored {
        transitions.push((ticket.backend, u.before, u.after));
    }
}

#[cfg(test)]
mod tests;
