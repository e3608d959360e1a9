//! proxy-wasm HTTP filter in front of `/predict`: splits traffic between the
//! Python and the Rust backend, mirrors a share to the other backend and
//! compares the answers, and falls back when a backend's circuit is open.
//!
//! Host-independent logic (unit tested natively): [`config`], [`split`],
//! [`breaker`], [`routing`], [`compare`], [`shadow`], [`metrics`].
//! The glue, plain Rust generic over the `host::Host` trait (hostcalls) and
//! tested natively against a fake host: `plugin` (configuration, what HTTP
//! contexts share), `filter` + `capture` (per request), `mirror` (shadow
//! calls and comparisons). The proxy-wasm contexts only delegate: `root`,
//! `http`; `host::Envoy` is the one real host.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod backend;
pub mod breaker;
pub mod compare;
pub mod config;
pub mod metrics;
pub mod routing;
pub mod shadow;
pub mod split;

mod capture;
mod filter;
mod host;
mod http;
mod mirror;
mod plugin;
mod root;

#[cfg(test)]
mod glue_tests;
#[cfg(test)]
mod testutil;

use proxy_wasm::traits::RootContext;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> { Box::new(root::Root::new(host::Envoy)) });
}}
