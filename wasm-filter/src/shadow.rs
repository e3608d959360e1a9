//! Shadow mirroring bookkeeping, host-independent.
//!
//! A shadow call made from an HTTP context is cancelled when the client's
//! stream ends, so HTTP contexts hand the work to one root context over an
//! Envoy shared queue ([`Message`]); that root context dispatches the shadow
//! call and pairs its answer with the primary's in a [`Table`] bounded by
//! `max_in_flight` and swept by age, so nothing outlives its comparison.

use crate::config::Backend;
use std::collections::BTreeMap;

/// Why a request was not mirrored or its comparison dropped (metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Request or primary response body over `max_body_bytes`.
    BodyTooLarge,
    /// `max_in_flight` comparisons already waiting.
    InFlightLimit,
    /// The shadow target's circuit is not closed.
    BreakerOpen,
    /// The client's stream ended before the primary answered.
    Abandoned,
    /// No primary answer arrived in time (swept by age).
    Expired,
    /// The shared queue refused the message.
    Queue,
    /// The primary answered before the client's request body had all
    /// arrived (a backend may answer an error from the headers alone), so
    /// there was no whole request to mirror.
    AnsweredEarly,
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        SkipReason::BodyTooLarge,
        SkipReason::InFlightLimit,
        SkipReason::BreakerOpen,
        SkipReason::Abandoned,
        SkipReason::Expired,
        SkipReason::Queue,
        SkipReason::AnsweredEarly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::BodyTooLarge => "body_too_large",
            SkipReason::InFlightLimit => "in_flight_limit",
            SkipReason::BreakerOpen => "breaker_open",
            SkipReason::Abandoned => "abandoned",
            SkipReason::Expired => "expired",
            SkipReason::Queue => "queue",
            SkipReason::AnsweredEarly => "answered_early",
        }
    }

    fn code(self) -> u8 {
        match self {
            SkipReason::BodyTooLarge => 0,
            SkipReason::InFlightLimit => 1,
            SkipReason::BreakerOpen => 2,
            SkipReason::Abandoned => 3,
            SkipReason::Expired => 4,
            SkipReason::Queue => 5,
            SkipReason::AnsweredEarly => 6,
        }
    }

    fn from_code(c: u8) -> Option<SkipReason> {
        SkipReason::ALL.into_iter().find(|r| r.code() == c)
    }
}

/// HTTP context -> shadow root context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Send this request to `target` and expect the primary's answer under `id`.
    Start {
        id: u64,
        target: Backend,
        request_id: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The primary's answer to `id`.
    Primary { id: u64, status: u32, body: Vec<u8> },
    /// No primary answer will come for `id`.
    Abandon { id: u64, reason: SkipReason },
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::Start {
                id,
                target,
                request_id,
                headers,
                body,
            } => {
                out.reserve(
                    64 + body.len()
                        + headers
                            .iter()
                            .map(|(k, v)| k.len() + v.len() + 8)
                            .sum::<usize>(),
                );
                out.push(1);
                out.extend_from_slice(&id.to_le_bytes());
                out.push(target.index() as u8);
                put_bytes(&mut out, request_id.as_bytes());
                out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
                for (k, v) in headers {
                    put_bytes(&mut out, k.as_bytes());
                    put_bytes(&mut out, v.as_bytes());
                }
                put_bytes(&mut out, body);
            }
            Message::Primary { id, status, body } => {
                out.reserve(17 + body.len());
                out.push(2);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&status.to_le_bytes());
                put_bytes(&mut out, body);
            }
            Message::Abandon { id, reason } => {
                out.push(3);
                out.extend_from_slice(&id.to_le_bytes());
                out.push(reason.code());
            }
        }
        out
    }

    /// `None` for anything this version did not encode.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let mut r = Reader(bytes);
        let tag = r.u8()?;
        let id = r.u64()?;
        let msg = match tag {
            1 => {
                let target = match r.u8()? {
                    0 => Backend::Python,
                    1 => Backend::Rust,
                    _ => return None,
                };
                let request_id = r.string()?;
                let n = r.u32()? as usize;
                // Each header takes at least 8 bytes: refuse counts the input cannot hold.
                if n > r.0.len() / 8 {
                    return None;
                }
                let mut headers = Vec::with_capacity(n);
                for _ in 0..n {
                    headers.push((r.string()?, r.string()?));
                }
                let body = r.bytes()?.to_vec();
                Message::Start {
                    id,
                    target,
                    request_id,
                    headers,
                    body,
                }
            }
            2 => {
                let status = r.u32()?;
                let body = r.bytes()?.to_vec();
                Message::Primary { id, status, body }
            }
            3 => Message::Abandon {
                id,
                reason: SkipReason::from_code(r.u8()?)?,
            },
            _ => return None,
        };
        r.0.is_empty().then_some(msg)
    }
}

/// Marks shadow requests, so backends can tell them from client traffic.
pub const SHADOW_HEADER: &str = "x-nd-shadow";

/// Headers that belong to one hop or that the call sets itself.
const DROPPED: [&str; 9] = [
    ":authority",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "expect",
];

/// The shadow request's headers: the client's, minus hop-by-hop and
/// length headers (`dispatch_http_call` sets the length from the body) and
/// minus `strip` (credentials: `shadow.strip_headers`), with `:authority` of
/// the target, the routing header naming the target, and the shadow mark.
pub fn shadow_headers<'a>(
    client: &'a [(String, String)],
    routing_header: &'a str,
    strip: &[String],
    target: Backend,
    authority: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = client
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            !DROPPED.iter().any(|d| k.eq_ignore_ascii_case(d))
                && !strip.iter().any(|d| k.eq_ignore_ascii_case(d))
                && !k.eq_ignore_ascii_case(routing_header)
                && !k.eq_ignore_ascii_case(SHADOW_HEADER)
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    out.push((":authority", authority));
    out.push((routing_header, target.as_str()));
    out.push((SHADOW_HEADER, "1"));
    out
}

/// What came back from the shadow backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShadowAnswer {
    Response {
        status: u32,
        body: Vec<u8>,
    },
    /// No usable answer (timeout, reset, body over the cap): a shadow error.
    Failed(String),
}

#[derive(Debug)]
struct Pending {
    request_id: String,
    target: Backend,
    created_ms: u64,
    token: u32,
    primary: Option<(u32, Vec<u8>)>,
    shadow: Option<ShadowAnswer>,
}

/// Both answers of one request, ready to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub request_id: String,
    pub target: Backend,
    pub primary_status: u32,
    pub primary_body: Vec<u8>,
    pub shadow: ShadowAnswer,
}

/// Comparisons in flight, keyed by message id and by shadow call token.
#[derive(Debug, Default)]
pub struct Table {
    entries: BTreeMap<u64, Pending>,
    by_token: BTreeMap<u32, u64>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a dispatched shadow call. `false` (nothing recorded) for a
    /// duplicate id or token.
    pub fn insert(
        &mut self,
        id: u64,
        token: u32,
        request_id: String,
        target: Backend,
        now_ms: u64,
    ) -> bool {
        if self.entries.contains_key(&id) || self.by_token.contains_key(&token) {
            return false;
        }
        self.by_token.insert(token, id);
        self.entries.insert(
            id,
            Pending {
                request_id,
                target,
                created_ms: now_ms,
                token,
                primary: None,
                shadow: None,
            },
        );
        true
    }

    pub fn primary(&mut self, id: u64, status: u32, body: Vec<u8>) -> Option<Ready> {
        let p = self.entries.get_mut(&id)?;
        if p.primary.is_none() {
            p.primary = Some((status, body));
        }
        self.take_if_ready(id)
    }

    pub fn shadow(&mut self, token: u32, answer: ShadowAnswer) -> Option<Ready> {
        let id = self.by_token.remove(&token)?;
        let p = self.entries.get_mut(&id)?;
        p.shadow = Some(answer);
        self.take_if_ready(id)
    }

    /// Drops a comparison; `true` if it was there.
    pub fn abandon(&mut self, id: u64) -> bool {
        match self.entries.remove(&id) {
            Some(p) => {
                self.by_token.remove(&p.token);
                true
            }
            None => false,
        }
    }

    /// Drops comparisons older than `ttl_ms`; returns how many.
    pub fn expire(&mut self, now_ms: u64, ttl_ms: u64) -> usize {
        let old: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.created_ms) > ttl_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            self.abandon(*id);
        }
        old.len()
    }

    fn take_if_ready(&mut self, id: u64) -> Option<Ready> {
        let p = self.entries.get(&id)?;
        if p.primary.is_none() || p.shadow.is_none() {
            return None;
        }
        let p = self.entries.remove(&id)?;
        self.by_token.remove(&p.token);
        let (primary_status, primary_body) = p.primary?;
        Some(Ready {
            request_id: p.request_id,
            target: p.target,
            primary_status,
            primary_body,
            shadow: p.shadow?,
        })
    }
}

#[cfg(test)]
mod tests;
