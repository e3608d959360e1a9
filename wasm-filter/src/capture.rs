//! What one HTTP context collects for a shadow comparison, and the stage it
//! is at. Host-independent: the HTTP context reads headers and bodies, this
//! decides what to keep and which [`Message`] goes to the root context.
//!
//! ```text
//! Request --(end of request: Start sent)--> AwaitingPrimary
//!   --(response headers, more to come)--> Response{status}
//!   --(end of response: Primary sent)--> (dropped)
//! ```
//! Anything else drops the capture (body over the cap, unreadable chunk,
//! primary answering before the request ended, stream gone); once the Start
//! is sent the root must be told ([`Capture::abandon`]).

use crate::config::Backend;
use crate::shadow::{Message, SkipReason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Collecting the request body.
    Request,
    /// Start sent; waiting for the primary's response headers.
    AwaitingPrimary,
    /// Collecting the primary's response body.
    Response { status: u32 },
}

#[derive(Debug)]
pub struct Capture {
    pub id: u64,
    pub target: Backend,
    request_id: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    pub stage: Stage,
}

impl Capture {
    pub fn new(
        id: u64,
        target: Backend,
        request_id: String,
        headers: Vec<(String, String)>,
    ) -> Capture {
        Capture {
            id,
            target,
            request_id,
            headers,
            body: Vec::new(),
            stage: Stage::Request,
        }
    }

    /// Whether `more` bytes still fit in a body of at most `max` bytes.
    pub fn fits(&self, more: usize, max: usize) -> bool {
        self.body.len().saturating_add(more) <= max
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
    }

    /// The request is complete: the Start message, taking the request.
    /// The caller moves to [`Stage::AwaitingPrimary`] once it is enqueued.
    pub fn start(&mut self) -> Message {
        Message::Start {
            id: self.id,
            target: self.target,
            request_id: std::mem::take(&mut self.request_id),
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.body),
        }
    }

    /// The primary answered in full: its status and the collected body.
    pub fn primary(&mut self, status: u32) -> Message {
        Message::Primary {
            id: self.id,
            status,
            body: std::mem::take(&mut self.body),
        }
    }

    /// The message telling the root this comparison ends early; `None` if the
    /// Start never went out (the root knows nothing of it).
    pub fn abandon(&self, reason: SkipReason) -> Option<Message> {
        if matches!(self.stage, Stage::Request) {
            return None;
        }
        Some(Message::Abandon {
            id: self.id,
            reason,
        })
    }
}

#[cfg(test)]
mod tests;
