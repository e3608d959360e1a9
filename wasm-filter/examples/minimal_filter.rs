//! The Wasm cost floor for benchmarks: a filter that only sets one request
//! header (and so also triggers Envoy's route re-lookup, as the real filter
//! does). With the plugin configuration `read-status` it also reads the
//! response `:status`, the one hostcall nd_filter makes on top of that floor
//! (it needs it to see 5xx). Build:
//!   cargo build -p wasm-filter --target wasm32-wasip1 --release --example minimal_filter
//! -> target/wasm32-wasip1/release/examples/minimal_filter.wasm

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

#[derive(Default)]
struct Root {
    read_status: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let cfg = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX);
        self.read_status = matches!(cfg, Ok(Some(c)) if c.as_slice() == b"read-status");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(SetHeader {
            read_status: self.read_status,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct SetHeader {
    read_status: bool,
}

impl Context for SetHeader {}

impl HttpContext for SetHeader {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = hostcalls::set_map_value_bytes(
            MapType::HttpRequestHeaders,
            "x-nd-backend",
            Some(b"python"),
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.read_status {
            let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
        }
        Action::Continue
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}
