//! One plain `Config` and the one list of its settings ([`SETTINGS`]):
//! `config.toml` (its sections), then environment variables (`ND_*`; the
//! unprefixed names of before still read, with a deprecation warning), then
//! command-line flags, each overriding the last. A broken file or value is
//! an error naming the key.

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
    /// Deprecated spellings met while reading (logged at start).
    pub warnings: Vec<String>,
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
            warnings: Vec::new(),
        }
    }
}

/// One setting: its `config.toml` key, its environment variable (and the
/// unprefixed name it had before, still read with a deprecation warning),
/// its flag (`--` + the key's last part with `-`), its default as the
/// README's table gives it, what it does, and how a value sets it. The one
/// list: the file, the environment, the flags, the README table
/// (`config::table_markdown`, kept current by a test) and the Helm chart's
/// `config:` values (rendered into `config.toml`) all come from it.
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub legacy_env: &'static str,
    /// `--flag` of `neuro-divergent serve`.
    pub flag: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    apply: fn(&mut Config, Raw<'_>) -> Result<(), String>,
}

/// A value as it came: from `config.toml` (typed) or as text (environment,
/// flag).
#[derive(Clone, Copy)]
pub enum Raw<'a> {
    Toml(&'a toml::Value),
    Text(&'a str),
}

impl Raw<'_> {
    fn get<T>(self) -> Result<T, String>
    where
        T: std::str::FromStr + serde::de::DeserializeOwned,
        T::Err: std::fmt::Display,
    {
        match self {
            Raw::Toml(v) => v.clone().try_into().map_err(|e| e.to_string()),
            Raw::Text(s) => s
                .trim()
                .parse()
                .map_err(|e| format!("{s:?} is not valid: {e}")),
        }
    }
    fn millis(self) -> Result<Duration, String> {
        self.get::<u64>().map(Duration::from_millis)
    }
    fn text(self) -> Result<String, String> {
        self.get::<String>()
    }
}

macro_rules! setting {
    ($key:literal, $env:literal, $legacy:literal, $flag:literal, $default:literal, $doc:literal, |$c:ident, $v:ident| $body:expr) => {
        Setting {
            key: $key,
            env: $env,
            legacy_env: $legacy,
            flag: $flag,
            default: $default,
            doc: $doc,
            apply: |$c, $v| {
                $body;
                Ok(())
            },
        }
    };
}

/// Every setting, in the README table's order.
pub const SETTINGS: &[Setting] = &[
    setting!("server.host", "ND_HOST", "HOST", "host", "`0.0.0.0`", "listen address", |c, v| c.host = v.text()?),
    setting!("server.port", "ND_PORT", "PORT", "port", "`8080`", "listen port", |c, v| c.port = v.get()?),
    setting!("server.workers", "ND_WORKERS", "WORKERS", "workers", "`0` (one per core)", "tokio worker threads", |c, v| c.workers = v.get()?),
    setting!("server.max_body_bytes", "ND_MAX_BODY_BYTES", "MAX_BODY_BYTES", "max-body-bytes", "`8388608` (8 MiB)", "larger bodies get 413 `body_too_large`", |c, v| c.max_body_bytes = v.get()?),
    setting!("server.request_timeout_ms", "ND_REQUEST_TIMEOUT_MS", "REQUEST_TIMEOUT_MS", "request-timeout-ms", "`30000`", "slower requests get 504 `timeout`", |c, v| c.request_timeout = v.millis()?),
    setting!("server.max_concurrency", "ND_MAX_CONCURRENCY", "MAX_CONCURRENCY", "max-concurrency", "`256`", "requests in flight; more are shed with 503 `overloaded`", |c, v| c.max_concurrency = v.get()?),
    setting!("server.shutdown_timeout_ms", "ND_SHUTDOWN_TIMEOUT_MS", "SHUTDOWN_TIMEOUT_MS", "shutdown-timeout-ms", "`20000`", "drain bound after SIGTERM", |c, v| c.shutdown_timeout = v.millis()?),
    setting!("server.drain_delay_ms", "ND_DRAIN_DELAY_MS", "DRAIN_DELAY_MS", "drain-delay-ms", "`0`", "after SIGTERM keep accepting this long with `/ready` at 503", |c, v| c.drain_delay = v.millis()?),
    setting!("server.max_connections", "ND_MAX_CONNECTIONS", "MAX_CONNECTIONS", "max-connections", "`10000`", "open connections at most; more are accepted and closed at once (`connections_rejected_total`)", |c, v| c.max_connections = v.get()?),
    setting!("server.header_read_timeout_ms", "ND_HEADER_READ_TIMEOUT_MS", "HEADER_READ_TIMEOUT_MS", "header-read-timeout-ms", "`30000`", "a connection must send a request's headers within this (idle keep-alive included): slowloris clients are cut off; keep the proxy's upstream idle timeout below it", |c, v| c.header_read_timeout = v.millis()?),
    setting!("server.max_series", "ND_MAX_SERIES", "MAX_SERIES", "max-series", "`20000`", "most series in one `/predict`: more is 422 `too_many_series` (the Python service reads `MAX_SERIES`)", |c, v| c.max_series = v.get()?),
    setting!("server.api_profile", "ND_API_PROFILE", "API_PROFILE", "api-profile", "none", "the request/response shapes of the service being replaced (docs/profiles.md); none = docs/contract.md", |c, v| c.api_profile = Some(PathBuf::from(v.text()?)).filter(|p| !p.as_os_str().is_empty())),
    setting!("models.path", "ND_MODEL_PATH", "MODEL_PATH", "model-path", "`models`", "one bundle per subdirectory", |c, v| c.model_path = PathBuf::from(v.text()?)),
    setting!("models.cache_size", "ND_CACHE_SIZE", "CACHE_SIZE", "cache-size", "`256`", "bundles held; least recently used evicted", |c, v| c.cache_size = v.get()?),
    setting!("models.default", "ND_DEFAULT_MODEL", "DEFAULT_MODEL", "default-model", "none", "bundle used when `?model=` is absent", |c, v| c.default_model = Some(v.text()?).filter(|s| !s.is_empty())),
    setting!("models.eager", "ND_EAGER_LOAD", "EAGER_LOAD", "eager-load", "`true`", "load all at start (false: on first request)", |c, v| c.eager = v.get()?),
    setting!("models.reload_interval_ms", "ND_RELOAD_INTERVAL_MS", "RELOAD_INTERVAL_MS", "reload-interval-ms", "`5000`", "hot-reload check period; 0 disables", |c, v| c.reload_interval = v.millis()?),
    setting!("logging.level", "ND_LOG_LEVEL", "LOG_LEVEL", "log-level", "`info`", "tracing filter (`debug`, `nd_forecast=debug`, ...)", |c, v| c.log_level = v.text()?),
    setting!("logging.format", "ND_LOG_FORMAT", "LOG_FORMAT", "log-format", "`text`", "`json` or `text`", |c, v| c.log_format = v.get()?),
    setting!("metrics.enabled", "ND_METRICS_ENABLED", "METRICS_ENABLED", "metrics-enabled", "`true`", "serve `/metrics`", |c, v| c.metrics_enabled = v.get()?),
];

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "ND_CONFIG";

/// The README's configuration table, generated from [`SETTINGS`].
pub fn table_markdown() -> String {
    let mut out = String::from(
        "| `config.toml` key | environment | flag | default | meaning |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | `{}` | `--{}` | {} | {} |\n",
            s.key, s.env, s.flag, s.default, s.doc
        ));
    }
    out
}

/// The flags of `neuro-divergent serve`, one per setting (`--help` shows
/// each one's `ND_*` variable). Only values given on the command line are
/// kept: the environment is read by [`Config::apply_env`], under the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(pub Vec<(&'static str, String)>);

impl clap::FromArgMatches for Flags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for s in SETTINGS {
            if m.value_source(s.key) == Some(clap::parser::ValueSource::CommandLine) {
                if let Some(v) = m.get_one::<String>(s.key) {
                    given.push((s.key, v.clone()));
                }
            }
        }
        Ok(Flags(given))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Flags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SETTINGS.iter().fold(cmd, |cmd, s| {
            cmd.arg(
                clap::Arg::new(s.key)
                    .long(s.flag)
                    .env(s.env)
                    .value_name("VALUE")
                    .help(s.doc),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err(format!("{s:?} must be json or text")),
        }
    }
}

impl Config {
    /// Reads `path` if given (a missing explicit file is an error; so is a
    /// key no setting has).
    pub fn from_file(path: Option<&Path>) -> Result<Config, String> {
        let mut c = Config::default();
        let Some(path) = path else { return Ok(c) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let file: toml::Table =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        for (section, table) in &file {
            let Some(table) = table.as_table() else {
                return Err(format!(
                    "config {}: `{section}` must be a section ([{section}])",
                    path.display()
                ));
            };
            for (name, value) in table {
                let key = format!("{section}.{name}");
                let s = SETTINGS
                    .iter()
                    .find(|s| s.key == key)
                    .ok_or_else(|| format!("config {}: unknown key `{key}`", path.display()))?;
                (s.apply)(&mut c, Raw::Toml(value))
                    .map_err(|e| format!("config {}: `{key}`: {e}", path.display()))?;
            }
        }
        Ok(c)
    }

    /// Applies environment overrides through `get` (std::env::var in
    /// production): `ND_*`, else the unprefixed name of before with a
    /// deprecation warning kept in `warnings` (logged once logging is up).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        for s in SETTINGS {
            let (name, v) = match (get(s.env), get(s.legacy_env)) {
                (Some(v), _) => (s.env, v),
                (None, Some(v)) => {
                    self.warnings.push(format!(
                        "environment variable {} is deprecated: set {} instead",
                        s.legacy_env, s.env
                    ));
                    (s.legacy_env, v)
                }
                (None, None) => continue,
            };
            self.set(s.key, &v)
                .map_err(|e| format!("environment variable {name}: {e}"))?;
        }
        Ok(())
    }

    /// The whole configuration: defaults, then `file`, then the environment
    /// (through `env`), then `flags`; the API profile read and every value
    /// checked.
    pub fn resolve(
        file: Option<&Path>,
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut c = Config::from_file(file)?;
        c.apply_env(env)?;
        for (key, value) in &flags.0 {
            let flag = SETTINGS
                .iter()
                .find(|s| s.key == *key)
                .map_or(*key, |s| s.flag);
            c.set(key, value).map_err(|e| format!("--{flag}: {e}"))?;
        }
        c.load_profile()?;
        c.validate()?;
        Ok(c)
    }

    /// Sets one setting from text (a flag's or an environment variable's).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let s = SETTINGS
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| format!("unknown setting `{key}`"))?;
        (s.apply)(self, Raw::Text(value))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "{text}").unwrap();
        f
    }

    #[test]
    fn file_then_env_then_flags() {
        let f = file("[server]\nport = 9000\nworkers = 2\n[models]\npath = \"/x\"\ncache_size = 3\ndefault = \"m\"\n[logging]\nlevel = \"debug\"\nformat = \"json\"\n[metrics]\nenabled = false\n");
        let c = Config::from_file(Some(f.path())).unwrap();
        assert_eq!((c.port, c.workers, c.cache_size), (9000, 2, 3));
        assert_eq!(c.default_model.as_deref(), Some("m"));
        assert_eq!(
            (c.log_level.as_str(), c.log_format),
            ("debug", LogFormat::Json)
        );
        assert!(!c.metrics_enabled);
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().to_str().unwrap();
        let resolve = |pairs: &[(&str, &str)], flags: &[(&'static str, &str)]| {
            let flags = Flags(flags.iter().map(|(k, v)| (*k, v.to_string())).collect());
            Config::resolve(Some(f.path()), &flags, env(pairs)).unwrap()
        };
        let c = resolve(&[("ND_MODEL_PATH", models), ("ND_PORT", "7100")], &[]);
        assert_eq!((c.port, c.model_path.as_path()), (7100, dir.path()));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = resolve(
            &[("ND_MODEL_PATH", models), ("ND_PORT", "7100")],
            &[("server.port", "7200"), ("models.default", "")],
        );
        assert_eq!((c.port, c.default_model), (7200, None));
    }

    #[test]
    fn unprefixed_names_still_read_with_a_deprecation_warning() {
        let mut c = Config::default();
        c.apply_env(env(&[("PORT", "7000"), ("MAX_SERIES", "9")]))
            .unwrap();
        assert_eq!((c.port, c.max_series), (7000, 9));
        assert_eq!(
            c.warnings,
            vec![
                "environment variable PORT is deprecated: set ND_PORT instead".to_string(),
                "environment variable MAX_SERIES is deprecated: set ND_MAX_SERIES instead"
                    .to_string(),
            ]
        );
        // The prefixed name wins, and then the old one is not read at all.
        let mut c = Config::default();
        c.apply_env(env(&[("PORT", "x"), ("ND_PORT", "7001")]))
            .unwrap();
        assert_eq!(c.port, 7001);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn broken_inputs_are_named() {
        let f = file("[server]\nprot = 1\n");
        let e = Config::from_file(Some(f.path())).unwrap_err();
        assert!(e.contains("unknown key `server.prot`"), "{e}");
        let f = file("[server]\nport = \"eighty\"\n");
        let e = Config::from_file(Some(f.path())).unwrap_err();
        assert!(e.contains("server.port"), "{e}");
        let f = file("port = 80\n");
        let e = Config::from_file(Some(f.path())).unwrap_err();
        assert!(e.contains("`port` must be a section"), "{e}");
        let mut c = Config::default();
        let e = c.apply_env(env(&[("ND_PORT", "eighty")])).unwrap_err();
        assert!(e.contains("ND_PORT"), "{e}");
        let e = c.apply_env(env(&[("LOG_FORMAT", "xml")])).unwrap_err();
        assert!(
            e.contains("LOG_FORMAT") && e.contains("json or text"),
            "{e}"
        );
        assert!(Config::from_file(Some(Path::new("/nonexistent.toml"))).is_err());
        c.model_path = PathBuf::from("/nonexistent");
        assert!(c.validate().unwrap_err().contains("/nonexistent"));
        let flags = Flags(vec![("server.port", "x".into())]);
        let e = Config::resolve(None, &flags, env(&[])).unwrap_err();
        assert!(e.starts_with("--port:"), "{e}");
    }

    #[test]
    fn settings_are_named_once_each() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            for name in [s.key, s.env, s.legacy_env, s.flag] {
                assert!(seen.insert(name), "{name} twice");
            }
            assert_eq!(s.env, format!("ND_{}", s.legacy_env), "{}", s.key);
            // Every setting takes its documented default's text form, from
            // the file and the environment alike.
            let mut c = Config::default();
            let default = s.default.split('`').nth(1).unwrap_or("");
            if !default.is_empty() {
                c.set(s.key, default).unwrap();
            }
        }
    }

    /// README.md's configuration table is generated from [`SETTINGS`]; set
    /// `ND_UPDATE_README=1` to rewrite it after changing a setting.
    #[test]
    fn readme_table_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let text = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = (
            "<!-- BEGIN generated from inference/server/src/config.rs -->\n",
            "<!-- END generated -->",
        );
        let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
            panic!("README.md lacks the generated configuration table's markers");
        };
        let want = table_markdown();
        if std::env::var_os("ND_UPDATE_README").is_some() {
            let new = format!("{}{begin}{want}{}", &text[..a], &text[b..]);
            std::fs::write(&path, new).unwrap();
            return;
        }
        assert!(
            text[a + begin.len()..b] == want,
            "README.md's configuration table is stale: run `ND_UPDATE_README=1 cargo test -p neuro-divergent readme_table`"
        );
    }

    #[test]
    fn connection_header_and_series_limits_are_read_and_checked() {
        let f =
            file("[server]\nmax_connections = 12\nheader_read_timeout_ms = 1500\nmax_series = 7\n");
        let mut c = Config::from_file(Some(f.path())).unwrap();
        assert_eq!(c.max_connections, 12);
        assert_eq!(c.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(c.max_series, 7);
        c.apply_env(env(&[
            ("ND_MAX_SERIES", "9"),
            ("ND_MAX_CONNECTIONS", "3"),
            ("ND_HEADER_READ_TIMEOUT_MS", "250"),
        ]))
        .unwrap();
        assert_eq!(
            (c.max_series, c.max_connections, c.header_read_timeout),
            (9, 3, Duration::from_millis(250))
        );
        c.model_path = std::env::temp_dir();
        assert!(c.validate().is_ok());
        for broken in [
            "ND_MAX_SERIES",
            "ND_MAX_CONNECTIONS",
            "ND_HEADER_READ_TIMEOUT_MS",
        ] {
            let mut z = c.clone();
            z.apply_env(env(&[(broken, "0")])).unwrap();
            let e = z.validate().unwrap_err();
            assert!(e.contains("must be positive"), "{broken}: {e}");
        }
    }

    #[test]
    fn shipped_example_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let c = Config::from_file(Some(&p)).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.log_format, LogFormat::Json);
    }
}
