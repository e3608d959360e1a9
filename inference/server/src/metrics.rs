//! Prometheus metrics (prometheus-client). Names are part of the operations
//! contract: the Flagger MetricTemplates and alert rules query them.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BundleLabels {
    pub bundle: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

pub struct Metrics {
    registry: Registry,
    pub predictions: Family<BundleLabels, Counter>,
    pub prediction_duration: Family<BundleLabels, Histogram>,
    pub model_memory: Family<BundleLabels, Gauge>,
    pub errors: Family<ErrorLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_loads: Family<BundleLabels, Counter>,
    pub cache_evictions: Counter,
    pub reload_failures: Family<BundleLabels, Counter>,
    pub bundles_loaded: Gauge,
    pub in_flight: Gauge,
    pub connections_open: Gauge,
    pub connections_rejected: Counter,
}

fn latency_buckets() -> Histogram {
    // 50 us .. ~3 s: forward passes are sub-millisecond, the SLO is 500 ms.
    Histogram::new([
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("neuro_divergent");
        let predictions = Family::<BundleLabels, Counter>::default();
        let prediction_duration = Family::<BundleLabels, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        let model_memory = Family::<BundleLabels, Gauge>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        let cache_hits = Counter::default();
        let cache_misses = Counter::default();
        let cache_loads = Family::<BundleLabels, Counter>::default();
        let cache_evictions = Counter::default();
        let reload_failures = Family::<BundleLabels, Counter>::default();
        let bundles_loaded = Gauge::default();
        let in_flight = Gauge::default();
        let connections_open = Gauge::default();
        let connections_rejected = Counter::default();
        registry.register(
            "connections_open",
            "HTTP connections open now (bounded by server.max_connections)",
            connections_open.clone(),
        );
        registry.register(
            "connections_rejected",
            "Connections closed at accept because server.max_connections were open",
            connections_rejected.clone(),
        );
        registry.register(
            "predictions",
            "Successful /predict calls per bundle",
            predictions.clone(),
        );
        registry.register(
            "prediction_duration_seconds",
            "Time to answer a successful /predict, from its headers (body upload, parse, forward passes, serialise)",
            prediction_duration.clone(),
        );
        registry.register(
            "model_memory_bytes",
            "Bytes of weights held per loaded bundle",
            model_memory.clone(),
        );
        registry.register(
            "errors",
            "Error answers by contract error code",
            errors.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_duration.clone(),
        );
        registry.register(
            "cache_hits",
            "Bundle lookups served from the cache",
            cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Bundle lookups that had to load from disk",
            cache_misses.clone(),
        );
        registry.register(
            "cache_loads",
            "Bundles loaded (start, lazy load or hot reload)",
            cache_loads.clone(),
        );
        registry.register(
            "cache_evictions",
            "Bundles evicted by the LRU bound",
            cache_evictions.clone(),
        );
        registry.register(
            "reload_failures",
            "New bundle versions refused (the previous version keeps serving)",
            reload_failures.clone(),
        );
        registry.register(
            "bundles_loaded",
            "Bundles currently in memory",
            bundles_loaded.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being handled now",
            in_flight.clone(),
        );
        Metrics {
            registry,
            predictions,
            prediction_duration,
            model_memory,
            errors,
            http_requests,
            http_duration,
            cache_hits,
            cache_misses,
            cache_loads,
            cache_evictions,
            reload_failures,
            bundles_loaded,
            in_flight,
            connections_open,
            connections_rejected,
        }
    }

    pub fn bundle(name: &str) -> BundleLabels {
        BundleLabels {
            bundle: name.to_string(),
        }
    }

    pub fn error(&self, code: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                code: code.to_string(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_ones() {
        let m = Metrics::new();
        m.predictions.get_or_create(&Metrics::bundle("b")).inc();
        m.prediction_duration
            .get_or_create(&Metrics::bundle("b"))
            .observe(0.001);
        m.model_memory
            .get_or_create(&Metrics::bundle("b"))
            .set(1234);
        m.error("malformed_json");
        m.reload_failures.get_or_create(&Metrics::bundle("b")).inc();
        let text = m.render();
        for name in [
            "neuro_divergent_predictions_total{bundle=\"b\"} 1",
            "neuro_divergent_prediction_duration_seconds_bucket",
            "neuro_divergent_model_memory_bytes{bundle=\"b\"} 1234",
            "neuro_divergent_errors_total{code=\"malformed_json\"} 1",
            "neuro_divergent_cache_hits_total",
            "neuro_divergent_reload_failures_total{bundle=\"b\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
