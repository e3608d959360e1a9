//! The HTTP context, as proxy-wasm sees it: each callback is one method of
//! [`Filter`].

use crate::filter::Filter;
use crate::host::Host;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

impl<H: Host> Context for Filter<H> {}

impl<H: Host> HttpContext for Filter<H> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.request_headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.request_trailers()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.response_headers(end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.response_body(body_size, end_of_stream)
    }

    fn on_log(&mut self) {
        self.done();
    }
}
