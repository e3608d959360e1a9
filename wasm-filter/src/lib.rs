//! proxy-wasm HTTP filter in front of `/predict`: splits traffic between the
//! Python and the Rust backend, mirrors a share to the other backend and
//! compares the answers, and falls back when a backend's circuit is open.
//!
//! Host-independent logic (unit tested natively): [`config`], [`split`],
//! [`breaker`], [`routing`], [`compare`], [`shadow`], [`metrics`].
//! Thin shim translating hostcalls: `root` (configuration, shadow calls),
//! `http` (per request), `host` (hostcall wrappers).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod breaker;
pub mod compare;
pub mod config;
pub mod metrics;
pub mod routing;
pub mod shadow;
pub mod split;

mod host;
mod http;
mod root;

#[cfg(test)]
mod testutil;

use proxy_wasm::traits::RootContext;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> { Box::new(root::Root::new()) });
}}
