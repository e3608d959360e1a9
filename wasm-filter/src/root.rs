//! The root context, as proxy-wasm sees it: each callback delegates to
//! [`Plugin`] (configuration, VM-wide tick) or [`Mirror`] (shadow calls).

use crate::filter::Filter;
use crate::host::Host;
use crate::mirror::Mirror;
use crate::plugin::Plugin;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

pub struct Root<H> {
    host: H,
    plugin: Option<Rc<Plugin<H>>>,
    mirror: Mirror,
}

impl<H: Host> Root<H> {
    pub fn new(host: H) -> Root<H> {
        Root {
            host,
            plugin: None,
            mirror: Mirror::default(),
        }
    }

    /// The HTTP context for a new stream, under the current configuration.
    pub fn filter(&self, context_id: u32) -> Filter<H> {
        Filter::new(self.plugin.clone(), context_id)
    }

    #[cfg(test)]
    pub fn plugin(&self) -> Option<&Plugin<H>> {
        self.plugin.as_deref()
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.mirror.in_flight()
    }
}

impl<H: Host> Context for Root<H> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(p) = &self.plugin {
            self.mirror
                .call_response(p, token_id, num_headers, body_size);
        }
    }
}

impl<H: Host> RootContext for Root<H> {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // A refused configuration leaves the previous one in place.
        match Plugin::configure(self.host.clone()) {
            Some(p) => {
                self.plugin = Some(Rc::new(p));
                true
            }
            None => false,
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Some(p) = &self.plugin {
            self.mirror.queue_ready(p, queue_id);
        }
    }

    fn on_tick(&mut self) {
        if let Some(p) = &self.plugin {
            p.tick();
            self.mirror.expire(p);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(self.filter(context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
