//! The real server on an ephemeral port, spoken to over TCP: routes, limits,
//! load shedding, timeouts, hot reload and refusal of broken versions.

use neuro_divergent::config::Config;
use neuro_divergent::http::{server, AppState};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn copy_bundle(src: &str, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(fixtures().join("bundles").join(src)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// Replaces a bundle directory's content the way operators do: write a new
/// directory next to it, then rename over (atomic for readers).
fn replace_bundle(src: &str, dst: &Path) {
    let tmp = dst.with_extension("new");
    let _ = std::fs::remove_dir_all(&tmp);
    copy_bundle(src, &tmp);
    let old = dst.with_extension("old");
    std::fs::rename(dst, &old).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
    std::fs::remove_dir_all(&old).unwrap();
}

fn case(name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(fixtures().join("cases").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap()
}

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

async fn send(addr: &str, method: &str, path: &str, ctype: Option<&str>, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(ct) = ctype {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    read_reply(&mut s).await
}

async fn read_reply(s: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Reply { status, body }
}

async fn start(cfg: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = AppState::new(cfg);
    tokio::spawn(server::serve(state, listener));
    for _ in 0..200 {
        if let Ok(mut s) = TcpStream::connect(&addr).await {
            s.write_all(b"GET /ready HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            if read_reply(&mut s).await.status == 200 {
                return addr;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not become ready");
}

fn config(model_path: &Path) -> Config {
    Config {
        model_path: model_path.to_path_buf(),
        reload_interval: Duration::from_millis(100),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_answer_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    copy_bundle("mlp_d_standard", &dir.path().join("only"));
    let addr = start(config(dir.path())).await;
    let c = case("mlp_d_standard__tail");
    let body = serde_json::to_vec(&c["request"]).unwrap();

    // The only bundle is the default.
    let r = send(&addr, "POST", "/predict", Some("application/json"), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["model"], "only");
    assert_eq!(
        r.json()["predictions"].as_array().unwrap().len(),
        c["expected"]["predictions"].as_array().unwrap().len()
    );

    assert_eq!(send(&addr, "GET", "/health", None, b"").await.status, 200);
    let models = send(&addr, "GET", "/models", None, b"").await.json();
    assert_eq!(models["models"][0]["name"], "only");
    assert_eq!(models["models"][0]["models"][0]["class"], "MLP");

    let r = send(
        &addr,
        "POST",
        "/predict?model=nope",
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (404, "unknown_model"));
    let r = send(&addr, "POST", "/predict", Some("text/plain"), &body).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    let r = send(&addr, "GET", "/predict", None, b"").await;
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    let r = send(
        &addr,
        "POST",
        "/predict",
        Some("application/json"),
        b"{\"df\": [",
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "malformed_json"));

    let metrics = send(&addr, "GET", "/metrics", None, b"").await.body;
    assert!(
        metrics.contains("neuro_divergent_predictions_total{bundle=\"only\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("neuro_divergent_errors_total{code=\"unknown_model\"} 1"));
    assert!(metrics.contains("neuro_divergent_model_memory_bytes{bundle=\"only\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheds_load_and_times_out_instead_of_queueing() {
    let dir = tempfile::tempdir().unwrap();
    copy_bundle("mlp_d_standard", &dir.path().join("m"));
    let cfg = Config {
        max_concurrency: 1,
        request_timeout: Duration::from_millis(300),
        ..config(dir.path())
    };
    let addr = start(cfg).await;
    // A client that sends its headers and then stalls holds the only slot.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"df\"")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let body = serde_json::to_vec(&case("mlp_d_standard__tail")["request"]).unwrap();
    let r = send(&addr, "POST", "/predict", Some("application/json"), &body).await;
    assert_eq!((r.status, r.code().as_str()), (503, "overloaded"));
    // Probes and scrapes are not shed: an overloaded pod must not look dead.
    assert_eq!(send(&addr, "GET", "/health", None, b"").await.status, 200);
    assert_eq!(send(&addr, "GET", "/ready", None, b"").await.status, 200);
    assert_eq!(send(&addr, "GET", "/metrics", None, b"").await.status, 200);
    // The stalled request itself is cut at the timeout.
    let r = read_reply(&mut slow).await;
    assert_eq!((r.status, r.code().as_str()), (504, "timeout"));
    // And the slot is free again.
    let r = send(&addr, "POST", "/predict", Some("application/json"), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_is_enforced_even_without_content_length() {
    let dir = tempfile::tempdir().unwrap();
    copy_bundle("mlp_d_standard", &dir.path().join("m"));
    let cfg = Config {
        max_body_bytes: 1000,
        ..config(dir.path())
    };
    let addr = start(cfg).await;
    let r = send(
        &addr,
        "POST",
        "/predict",
        Some("application/json"),
        &vec![b' '; 5000],
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (413, "body_too_large"));
    // Chunked: no length up front.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /predict HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..3 {
        s.write_all(b"200\r\n").await.unwrap();
        s.write_all(&[b' '; 0x200]).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let r = read_reply(&mut s).await;
    assert_eq!((r.status, r.code().as_str()), (413, "body_too_large"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_good_versions_and_refuses_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    copy_bundle("mlp_d_standard", &m);
    let addr = start(config(dir.path())).await;
    let body = serde_json::to_vec(&case("nlinear_d_robust__tail")["request"]).unwrap();
    let hash = |v: &Value| {
        v["models"][0]["content_hash"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let first = hash(&send(&addr, "GET", "/models", None, b"").await.json());
    let before = send(
        &addr,
        "POST",
        "/predict?model=m",
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(before.status, 200);
    assert!(before.body.contains("\"MLP\""));

    // A new good version (another model class, same freq and h) is picked up.
    replace_bundle("nlinear_d_robust", &m);
    let mut swapped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let models = send(&addr, "GET", "/models", None, b"").await.json();
        if hash(&models) != first {
            assert_eq!(models["models"][0]["models"][0]["class"], "NLinear");
            swapped = true;
            break;
        }
    }
    assert!(swapped, "the new version was not loaded");
    let after = send(
        &addr,
        "POST",
        "/predict?model=m",
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(after.status, 200);
    let want = case("nlinear_d_robust__tail")["expected"]["predictions"][0]["NLinear"]
        .as_f64()
        .unwrap();
    let got = after.json()["predictions"][0]["NLinear"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-4 + 1e-5 * want.abs());

    // A broken version (truncated weights) is refused; the good one keeps serving.
    let good_hash = hash(&send(&addr, "GET", "/models", None, b"").await.json());
    let tmp = dir.path().join("m.broken");
    copy_bundle("nlinear_d_robust", &tmp);
    let f = tmp.join("NLinear_0.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&m, dir.path().join("m.prev")).unwrap();
    std::fs::rename(&tmp, &m).unwrap();
    let mut refused = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let metrics = send(&addr, "GET", "/metrics", None, b"").await.body;
        if metrics.contains("neuro_divergent_reload_failures_total{bundle=\"m\"} 1") {
            refused = true;
            break;
        }
    }
    assert!(refused, "the broken version was not refused");
    assert_eq!(
        hash(&send(&addr, "GET", "/models", None, b"").await.json()),
        good_hash
    );
    let still = send(
        &addr,
        "POST",
        "/predict?model=m",
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(still.status, 200);
    assert_eq!(still.body, after.body);
}

#[test]
fn broken_config_and_model_path_exit_with_one_clear_line() {
    let bin = env!("CARGO_BIN_EXE_neuro-divergent");
    let out = std::process::Command::new(bin)
        .args(["serve", "--model-path", "/nonexistent/models"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/models"));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[server]\nport = \"eighty\"\n").unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
}

#[test]
fn predict_and_inspect_subcommands() {
    let bin = env!("CARGO_BIN_EXE_neuro-divergent");
    let c = case("multi_d__tail");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("req.json");
    std::fs::write(&input, serde_json::to_vec(&c["request"]).unwrap()).unwrap();
    let out = std::process::Command::new(bin)
        .args(["predict", "--model-dir"])
        .arg(fixtures().join("bundles/multi_d"))
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["predictions"].as_array().unwrap().len(),
        c["expected"]["predictions"].as_array().unwrap().len()
    );

    let out = std::process::Command::new(bin)
        .arg("inspect")
        .arg(fixtures().join("bundles/multi_d"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["DLinear", "MLP", "NLinear", "sha256:", "h=7"] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    let out = std::process::Command::new(bin)
        .args(["inspect", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// SIGTERM with a request in flight: /ready turns 503 while the request
/// completes with 200, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    copy_bundle("mlp_d_standard", &dir.path().join("m"));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_neuro-divergent"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--model-path",
        ])
        .arg(dir.path())
        .env("ND_DRAIN_DELAY_MS", "1500")
        .env("ND_RELOAD_INTERVAL_MS", "0")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..500 {
        if let Ok(mut s) = TcpStream::connect(&addr).await {
            s.write_all(b"GET /ready HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            if read_reply(&mut s).await.status == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ready);
    let body = serde_json::to_vec(&case("mlp_d_standard__tail")["request"]).unwrap();
    let mut inflight = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /predict HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    inflight.write_all(head.as_bytes()).await.unwrap();
    inflight.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let pid = child.id().unwrap().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = send(&addr, "GET", "/ready", None, b"").await;
    assert_eq!(r.status, 503, "ready must turn 503 first");

    inflight.write_all(&body[10..]).await.unwrap();
    let r = read_reply(&mut inflight).await;
    assert_eq!(r.status, 200, "in-flight request must complete: {}", r.body);

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit {status:?}");
}
