//! One plain `Config`: `config.toml` (its sections), then
//! environment variables, then command-line flags, each overriding the last.
//! A broken file or value is an error naming the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Tokio worker threads; 0 = one per core.
    pub workers: usize,
    pub model_path: PathBuf,
    /// Most bundles held in memory; least recently used ones are evicted.
    pub cache_size: usize,
    pub default_model: Option<String>,
    /// Load every bundle at start (true) or on first request (false).
    pub eager: bool,
    /// How often the model path is checked for changed bundles; 0 disables.
    pub reload_interval: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    pub metrics_enabled: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long to keep accepting with /ready at 503 before
    /// closing the listener (lets endpoints be removed first).
    pub drain_delay: Duration,
    /// Open connections at most; more are accepted and closed at once.
    pub max_connections: usize,
    /// Time a connection may take to send a request's headers, idle
    /// keep-alive time included (slow-header clients are cut off).
    pub header_read_timeout: Duration,
    /// Most series in one /predict (422 `too_many_series` beyond).
    pub max_series: usize,
    /// The API profile file (request/response shapes of the user's own
    /// service); none = docs/contract.md.
    pub api_profile: Option<PathBuf>,
    /// The profile read from `api_profile` by `load_profile`; `None` when
    /// it is the default contract (the typed fast path).
    pub custom_profile: Option<nd_forecast::profile::Profile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "0.0.0.0".into(),
            port: 8080,
            workers: 0,
            model_path: PathBuf::from("models"),
            cache_size: 256,
            default_model: None,
            eager: true,
            reload_interval: Duration::from_secs(5),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            metrics_enabled: true,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrency: 256,
            shutdown_timeout: Duration::from_secs(20),
            drain_delay: Duration::ZERO,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            max_series: nd_forecast::pipeline::DEFAULT_MAX_SERIES,
            api_profile: None,
            custom_profile: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<ServerSection>,
    models: Option<ModelsSection>,
    logging: Option<LoggingSection>,
    metrics: Option<MetricsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    host: Option<String>,
    port: Option<u16>,
    workers: Option<usize>,
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    max_concurrency: Option<usize>,
    shutdown_timeout_ms: Option<u64>,
    drain_delay_ms: Option<u64>,
    max_connections: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    max_series: Option<usize>,
    api_profile: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsSection {
    path: Option<PathBuf>,
    cache_size: Option<usize>,
    default: Option<String>,
    eager: Option<bool>,
    reload_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggingSection {
    level: Option<String>,
    format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    enabled: Option<bool>,
}

/// Environment variables read, documented in docs/service.md ("Configuration").
pub const ENV_VARS: &[&str] = &[
    "HOST",
    "PORT",
    "WORKERS",
    "MODEL_PATH",
    "CACHE_SIZE",
    "DEFAULT_MODEL",
    "EAGER_LOAD",
    "RELOAD_INTERVAL_MS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_ENABLED",
    "MAX_BODY_BYTES",
    "REQUEST_TIMEOUT_MS",
    "MAX_CONCURRENCY",
    "SHUTDOWN_TIMEOUT_MS",
    "DRAIN_DELAY_MS",
    "MAX_CONNECTIONS",
    "HEADER_READ_TIMEOUT_MS",
    "MAX_SERIES",
    "API_PROFILE",
];

impl Config {
    /// Reads `path` if given (a missing explicit file is an error).
    pub fn from_file(path: Option<&Path>) -> Result<Config, String> {
        let mut c = Config::default();
        let Some(path) = path else { return Ok(c) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let f: FileConfig =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        if let Some(s) = f.server {
            set(&mut c.host, s.host);
            set(&mut c.port, s.port);
            set(&mut c.workers, s.workers);
            set(&mut c.max_body_bytes, s.max_body_bytes);
            set(
                &mut c.request_timeout,
                s.request_timeout_ms.map(Duration::from_millis),
            );
            set(&mut c.max_concurrency, s.max_concurrency);
            set(
                &mut c.shutdown_timeout,
                s.shutdown_timeout_ms.map(Duration::from_millis),
            );
            set(
                &mut c.drain_delay,
                s.drain_delay_ms.map(Duration::from_millis),
            );
            set(&mut c.max_connections, s.max_connections);
            set(&mut c.max_series, s.max_series);
            c.api_profile = s.api_profile.or(c.api_profile);
            set(
                &mut c.header_read_timeout,
                s.header_read_timeout_ms.map(Duration::from_millis),
            );
        }
        if let Some(m) = f.models {
            set(&mut c.model_path, m.path);
            set(&mut c.cache_size, m.cache_size);
            c.default_model = m.default.or(c.default_model);
            set(&mut c.eager, m.eager);
            set(
                &mut c.reload_interval,
                m.reload_interval_ms.map(Duration::from_millis),
            );
        }
        if let Some(l) = f.logging {
            set(&mut c.log_level, l.level);
            set(&mut c.log_format, l.format);
        }
        if let Some(m) = f.metrics {
            set(&mut c.metrics_enabled, m.enabled);
        }
        Ok(c)
    }

    /// Applies environment overrides through `get` (std::env::var in production).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(key: &str, v: String) -> Result<T, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("environment variable {key}={v:?} is not valid"))
        }
        for key in ENV_VARS {
            let Some(v) = get(key) else { continue };
            match *key {
                "HOST" => self.host = v,
                "PORT" => self.port = parse(key, v)?,
                "WORKERS" => self.workers = parse(key, v)?,
                "MODEL_PATH" => self.model_path = PathBuf::from(v),
                "CACHE_SIZE" => self.cache_size = parse(key, v)?,
                "DEFAULT_MODEL" => self.default_model = Some(v).filter(|s| !s.is_empty()),
                "EAGER_LOAD" => self.eager = parse(key, v)?,
                "RELOAD_INTERVAL_MS" => {
                    self.reload_interval = Duration::from_millis(parse(key, v)?)
                }
                "LOG_LEVEL" => self.log_level = v,
                "LOG_FORMAT" => {
                    self.log_format = match v.as_str() {
                        "json" => LogFormat::Json,
                        "text" => LogFormat::Text,
                        _ => {
                            return Err(format!(
                                "environment variable LOG_FORMAT={v:?} must be json or text"
                            ))
                        }
                    }
                }
                "METRICS_ENABLED" => self.metrics_enabled = parse(key, v)?,
                "MAX_BODY_BYTES" => self.max_body_bytes = parse(key, v)?,
                "REQUEST_TIMEOUT_MS" => {
                    self.request_timeout = Duration::from_millis(parse(key, v)?)
                }
                "MAX_CONCURRENCY" => self.max_concurrency = parse(key, v)?,
                "SHUTDOWN_TIMEOUT_MS" => {
                    self.shutdown_timeout = Duration::from_millis(parse(key, v)?)
                }
                "DRAIN_DELAY_MS" => self.drain_delay = Duration::from_millis(parse(key, v)?),
                "MAX_CONNECTIONS" => self.max_connections = parse(key, v)?,
                "MAX_SERIES" => self.max_series = parse(key, v)?,
                "API_PROFILE" => {
                    self.api_profile = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty())
                }
                "HEADER_READ_TIMEOUT_MS" => {
                    self.header_read_timeout = Duration::from_millis(parse(key, v)?)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads and checks `api_profile` (a broken profile is refused at start,
    /// with the key and the reason).
    pub fn load_profile(&mut self) -> Result<(), String> {
        if let Some(p) = &self.api_profile {
            let profile =
                nd_forecast::profile::Profile::load(p).map_err(|e| format!("API profile {e}"))?;
            self.custom_profile = Some(profile).filter(|p| !p.is_default());
        }
        Ok(())
    }

    /// The API profile the service speaks: the custom one, else the contract's.
    pub fn profile(&self) -> &nd_forecast::profile::Profile {
        self.custom_profile
            .as_ref()
            .unwrap_or_else(|| nd_forecast::profile::Profile::contract())
    }

    /// Checks what the types cannot: a usable model path and positive limits.
    pub fn validate(&self) -> Result<(), String> {
        if !self.model_path.is_dir() {
            return Err(format!(
                "model path {} is not a directory",
                self.model_path.display()
            ));
        }
        if self.cache_size == 0 {
            return Err("models.cache_size must be at least 1".into());
        }
        if self.max_concurrency == 0
            || self.max_body_bytes == 0
            || self.max_connections == 0
            || self.max_series == 0
        {
            return Err(
                "server.max_concurrency, server.max_body_bytes, server.max_connections and server.max_series must be positive"
                    .into(),
            );
        }
        if self.header_read_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(
                "server.header_read_timeout_ms and server.request_timeout_ms must be positive"
                    .into(),
            );
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_then_env_override() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[server]\nport = 9000\nworkers = 2\n[models]\npath = \"/x\"\ncache_size = 3\ndefault = \"m\"\n[logging]\nlevel = \"debug\"\nformat = \"json\"\n[metrics]\nenabled = false").unwrap();
        let mut c = Config::from_file(Some(f.path())).unwrap();
        assert_eq!((c.port, c.workers, c.cache_size), (9000, 2, 3));
        assert_eq!(c.default_model.as_deref(), Some("m"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(!c.metrics_enabled);
        c.apply_env(|k| match k {
            "PORT" => Some("7000".into()),
            "MODEL_PATH" => Some("/y".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.model_path, PathBuf::from("/y"));
    }

    #[test]
    fn broken_inputs_are_named() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[server]\nprot = 1").unwrap();
        assert!(Config::from_file(Some(f.path()))
            .unwrap_err()
            .contains("prot"));
        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "PORT").then(|| "eighty".into()))
            .unwrap_err();
        assert!(e.contains("PORT"));
        assert!(Config::from_file(Some(Path::new("/nonexistent.toml"))).is_err());
        c.model_path = PathBuf::from("/nonexistent");
        assert!(c.validate().unwrap_err().contains("/nonexistent"));
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn connection_header_and_series_limits_are_read_and_checked() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut f,
            b"[server]\nmax_connections = 12\nheader_read_timeout_ms = 1500\nmax_series = 7\n",
        )
        .unwrap();
        let mut c = Config::from_file(Some(f.path())).unwrap();
        assert_eq!(c.max_connections, 12);
        assert_eq!(c.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(c.max_series, 7);
        c.apply_env(|k| match k {
            "MAX_SERIES" => Some("9".into()),
            "MAX_CONNECTIONS" => Some("3".into()),
            "HEADER_READ_TIMEOUT_MS" => Some("250".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (c.max_series, c.max_connections, c.header_read_timeout),
            (9, 3, Duration::from_millis(250))
        );
        c.model_path = std::env::temp_dir();
        assert!(c.validate().is_ok());
        for broken in ["MAX_SERIES", "MAX_CONNECTIONS", "HEADER_READ_TIMEOUT_MS"] {
            let mut z = c.clone();
            z.apply_env(|k| (k == broken).then(|| "0".into())).unwrap();
            let e = z.validate().unwrap_err();
            assert!(e.contains("must be positive"), "{broken}: {e}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn shipped_example_parses() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let c = super::Config::from_file(Some(&p)).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.log_format, super::LogFormat::Json);
    }
}
