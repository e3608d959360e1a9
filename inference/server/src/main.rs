//! `neuro-divergent serve | predict | inspect`.

use clap::{Parser, Subcommand};
use nd_forecast::bundle::Bundle;
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use neuro_divergent::config::{Config, Flags, LogFormat};
use neuro_divergent::http::{server, AppState};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "neuro-divergent",
    version,
    about = "Serves NeuralForecast saved models with PyTorch's numbers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP service.
    Serve {
        /// config.toml (sections [server], [models], [logging], [metrics]).
        #[arg(long, env = "ND_CONFIG")]
        config: Option<PathBuf>,
        /// One flag per setting (README, "Configuration"); each overrides
        /// its `ND_*` variable, which overrides config.toml.
        #[command(flatten)]
        flags: Flags,
    },
    /// Predict offline: same JSON as POST /predict, answer on stdout.
    Predict {
        #[arg(long)]
        model_dir: PathBuf,
        /// Request JSON file ("-" for stdin).
        #[arg(long)]
        input: PathBuf,
    },
    /// Print what a bundle holds.
    Inspect { dir: PathBuf },
    /// Check an API profile; with --sample, print the request it reads from
    /// that body (docs/contract.md shape) and, with --model-dir too, the
    /// answer it writes.
    CheckProfile {
        file: PathBuf,
        #[arg(long)]
        sample: Option<PathBuf>,
        #[arg(long)]
        model_dir: Option<PathBuf>,
    },
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve { config, flags } => {
            let cfg = match Config::resolve(config.as_deref(), &flags, |k| std::env::var(k).ok()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("neuro-divergent: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(&cfg.log_level, cfg.log_format);
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            serve(cfg)
        }
        Cmd::Predict { model_dir, input } => {
            let run = || -> Result<String, String> {
                let bundle = Bundle::load(&model_dir).map_err(|e| e.to_string())?;
                let body = if input.as_os_str() == "-" {
                    let mut s = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                        .map_err(|e| e.to_string())?;
                    s
                } else {
                    std::fs::read(&input)
                        .map_err(|e| format!("cannot read {}: {e}", input.display()))?
                };
                let req = PredictRequest::from_slice(&body).map_err(|e| e.to_string())?;
                let f = pipeline::predict(&bundle, &req).map_err(|e| e.to_string())?;
                Ok(f.to_json(&bundle.name))
            };
            match run() {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("neuro-divergent: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::CheckProfile {
            file,
            sample,
            model_dir,
        } => match check_profile(&file, sample.as_deref(), model_dir.as_deref()) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("neuro-divergent: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Inspect { dir } => match Bundle::load(&dir) {
            Ok(b) => {
                println!("bundle {} ({})", b.name, b.content_hash);
                println!(
                    "  format={} written by {}",
                    b.format.name(),
                    b.format.writer()
                );
                println!(
                    "  h={} freq={} local_scaler={:?} weights={} bytes",
                    b.h, b.freq_json, b.local_scaler, b.memory_bytes
                );
                for m in &b.models {
                    let s = m.spec.as_ref();
                    println!(
                        "  {} [{}] file={} input_size={} scaler={} loss={} columns={:?} {}",
                        m.name,
                        m.class,
                        m.file,
                        s.map(|s| s.input_size.to_string()).unwrap_or("-".into()),
                        s.map(|s| format!("{:?}", s.scaler).to_lowercase())
                            .unwrap_or("-".into()),
                        s.map(|s| s.loss.clone()).unwrap_or("-".into()),
                        m.columns(),
                        match &m.net {
                            Ok(_) => "supported".to_string(),
                            Err(e) => format!("UNSUPPORTED: {e}"),
                        }
                    );
                }
                if let Some(u) = &b.unsupported {
                    println!("  UNSUPPORTED: {u}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("neuro-divergent: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn serve(cfg: Config) -> ExitCode {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if cfg.workers > 0 {
        rt.worker_threads(cfg.workers);
    }
    let rt = match rt.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("neuro-divergent: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = format!("{}:{}", cfg.host, cfg.port);
    rt.block_on(async move {
        let listener = match listen(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("neuro-divergent: cannot listen on {addr}: {e}");
                return ExitCode::from(2);
            }
        };
        let state = AppState::new(cfg);
        match server::serve(state, listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("neuro-divergent: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Binds with a listen backlog of 1024 (tokio's `TcpListener::bind` uses
/// 128, which makes a burst of new connections wait for SYN retries).
async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(1024)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{addr} resolves to no address"))))
}

/// `check-profile`: the profile's faults, or what it makes of a sample body.
fn check_profile(
    file: &std::path::Path,
    sample: Option<&std::path::Path>,
    model_dir: Option<&std::path::Path>,
) -> Result<String, String> {
    let profile = nd_forecast::profile::Profile::load(file).map_err(|e| e.to_string())?;
    let Some(sample) = sample else {
        return Ok(format!("{}: a valid API profile", file.display()));
    };
    let text = std::fs::read(sample).map_err(|e| format!("{}: {e}", sample.display()))?;
    let body: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", sample.display()))?;
    let bundle = model_dir
        .map(|d| Bundle::load(d).map_err(|e| e.to_string()))
        .transpose()?;
    let time_col = bundle.as_ref().map_or("ds", |b| b.columns.time.as_str());
    let contract = profile
        .to_contract(body, time_col)
        .map_err(|e| format!("{}: {e}", sample.display()))?;
    let Some(b) = bundle else {
        return Ok(contract.to_string());
    };
    let req = PredictRequest::from_value(&contract).map_err(|e| e.to_string())?;
    let forecast = pipeline::predict(&b, &req).map_err(|e| e.to_string())?;
    Ok(profile.answer(&forecast, &b.name))
}
