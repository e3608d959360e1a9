//! Circuit breaker per backend: a plain state machine over [`Breaker`], with
//! the current time passed in, and a byte form for Envoy shared data (the
//! only state all worker threads see). `store` does the read-modify-write.
//!
//! Closed: requests pass; `failure_threshold` consecutive failures open it.
//! Open: requests are refused until `recovery_ms` has passed since opening.
//! Half-open: up to `half_open_max_probes` probes at a time; a probe failure
//! opens it again, `half_open_successes` probe successes close it.

pub mod store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub recovery_ms: u64,
    pub half_open_max_probes: u32,
    pub half_open_successes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Closed,
    HalfOpen,
    Open,
}

impl State {
    /// The `to` label of transition metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half_open",
            State::Open => "open",
        }
    }

    /// The value of the state gauge.
    pub fn gauge(self) -> u64 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }

    pub const ALL: [State; 3] = [State::Closed, State::HalfOpen, State::Open];
}

/// What the breaker says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allow,
    /// Allowed as a half-open probe: its outcome must be reported with `probe = true`.
    Probe,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Breaker {
    pub state: State,
    pub consecutive_failures: u32,
    /// When the circuit last opened, ms since the epoch.
    pub opened_at_ms: u64,
    /// Probes admitted in this half-open window and not yet reported.
    pub probes_in_flight: u32,
    pub probe_successes: u32,
    /// Start of the half-open window. Probes that never report back (their
    /// worker went away) would hold the window shut; after `recovery_ms` it
    /// admits probes again.
    pub half_open_since_ms: u64,
}

impl Breaker {
    /// Only an open or half-open circuit needs the clock to decide.
    pub fn needs_clock(&self) -> bool {
        self.state != State::Closed
    }

    /// Decides one request. A change of `self` must be stored (CAS) for the
    /// decision to hold; an unchanged breaker needs no write.
    pub fn admit(&mut self, cfg: &BreakerConfig, now_ms: u64) -> Admission {
        match self.state {
            State::Closed => Admission::Allow,
            State::Open => {
                if now_ms >= self.opened_at_ms.saturating_add(cfg.recovery_ms) {
                    self.state = State::HalfOpen;
                    self.half_open_since_ms = now_ms;
                    self.probes_in_flight = 1;
                    self.probe_successes = 0;
                    Admission::Probe
                } else {
                    Admission::Deny
                }
            }
            State::HalfOpen => {
                if now_ms >= self.half_open_since_ms.saturating_add(cfg.recovery_ms) {
                    self.half_open_since_ms = now_ms;
                    self.probes_in_flight = 0;
                }
                if self.probes_in_flight < cfg.half_open_max_probes {
                    self.probes_in_flight += 1;
                    Admission::Probe
                } else {
                    Admission::Deny
                }
            }
        }
    }

    /// Whether `admit` would let a request through now, without taking a
    /// probe slot (used to decide whether a shadow may go there).
    pub fn would_admit(&self, cfg: &BreakerConfig, now_ms: u64) -> bool {
        let mut copy = *self;
        copy.admit(cfg, now_ms) != Admission::Deny
    }

    pub fn on_success(&mut self, cfg: &BreakerConfig, probe: bool) {
        match self.state {
            State::Closed => self.consecutive_failures = 0,
            State::HalfOpen if probe => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                self.probe_successes = self.probe_successes.saturating_add(1);
                if self.probe_successes >= cfg.half_open_successes {
                    *self = Breaker::default();
                }
            }
            // A request admitted before the circuit opened says nothing about now.
            State::HalfOpen | State::Open => {}
        }
    }

    pub fn on_failure(&mut self, cfg: &BreakerConfig, probe: bool, now_ms: u64) {
        match self.state {
            State::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= cfg.failure_threshold {
                    self.open(now_ms);
                }
            }
            State::HalfOpen if probe => self.open(now_ms),
            State::HalfOpen | State::Open => {}
        }
    }

    /// A probe that ended without an answer the breaker can judge (the
    /// client went away): give its slot back.
    pub fn on_abandoned(&mut self, probe: bool) {
        if probe && self.state == State::HalfOpen {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
    }

    fn open(&mut self, now_ms: u64) {
        *self = Breaker {
            state: State::Open,
            consecutive_failures: self.consecutive_failures,
            opened_at_ms: now_ms,
            ..Breaker::default()
        };
    }

    pub const ENCODED_LEN: usize = 30;
    const VERSION: u8 = 1;

    /// Fixed-size little-endian form stored in shared data.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = Self::VERSION;
        out[1] = match self.state {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        };
        out[2..6].copy_from_slice(&self.consecutive_failures.to_le_bytes());
        out[6..14].copy_from_slice(&self.opened_at_ms.to_le_bytes());
        out[14..18].copy_from_slice(&self.probes_in_flight.to_le_bytes());
        out[18..22].copy_from_slice(&self.probe_successes.to_le_bytes());
        out[22..30].copy_from_slice(&self.half_open_since_ms.to_le_bytes());
        out
    }

    /// `None` for bytes this version did not write; callers then start from
    /// a closed breaker rather than trusting them.
    pub fn decode(bytes: &[u8]) -> Option<Breaker> {
        if bytes.len() != Self::ENCODED_LEN || bytes[0] != Self::VERSION {
            return None;
        }
        let u32_at = |i: usize| {
            bytes
                .get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let u64_at = |i: usize| {
            bytes
                .get(i..i + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        Some(Breaker {
            state: match bytes[1] {
                0 => State::Closed,
                1 => State::HalfOpen,
                2 => State::Open,
                _ => return None,
            },
            consecutive_failures: u32_at(2)?,
            opened_at_ms: u64_at(6)?,
            probes_in_flight: u32_at(14)?,
            probe_successes: u32_at(18)?,
            half_open_since_ms: u64_at(22)?,
        })
    }
}

#[cfg(test)]
mod tests;
