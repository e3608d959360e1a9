//! Accept loop, hot-reload ticker and graceful shutdown: on SIGTERM/SIGINT
//! /ready turns 503 first, the listener stops, in-flight requests finish,
//! and the process exits within `shutdown_timeout`.

use super::layers::ObserveLayer;
use super::{routes, AppState};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// The full tower stack for one service instance (shared limits across clones).
/// Load shedding, the concurrency limit and the timeout guard `/predict` only:
/// probes and scrapes must keep answering while predictions are shed, or an
/// overloaded pod would look dead to its kubelet and to Prometheus.
pub fn service(
    state: Arc<AppState>,
) -> impl tower::Service<
    http::Request<Incoming>,
    Response = http::Response<super::Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let cfg = &state.config;
    let predict_state = state.clone();
    let limited = ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(cfg.max_concurrency)
        .timeout(cfg.request_timeout)
        .service_fn(move |req| routes::handle(predict_state.clone(), req));
    let metrics = state.metrics.clone();
    ServiceBuilder::new()
        .layer(ObserveLayer::new(metrics))
        .service_fn(move |req: http::Request<Incoming>| {
            let limited = limited.clone();
            let state = state.clone();
            async move {
                if req.uri().path() == "/predict" {
                    tower::ServiceExt::oneshot(limited, req).await
                } else {
                    routes::handle(state, req)
                        .await
                        .map_err(tower::BoxError::from)
                }
            }
        })
}

/// Waits for SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub async fn serve(state: Arc<AppState>, listener: TcpListener) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let started = std::time::Instant::now();

    // Initial load off the async workers; readiness waits for it.
    {
        let st = state.clone();
        tokio::task::spawn_blocking(move || {
            if st.config.eager {
                let n = st.cache.load_all();
                tracing::info!(
                    loaded = n,
                    on_disk = st.cache.on_disk().len(),
                    "initial load done"
                );
            }
            st.loaded.store(true, Ordering::SeqCst);
        })
        .await
        .map_err(std::io::Error::other)?;
    }
    tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "serving");

    if !state.config.reload_interval.is_zero() {
        let st = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(st.config.reload_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                if st.draining.load(Ordering::SeqCst) {
                    break;
                }
                let s2 = st.clone();
                let _ =
                    tokio::task::spawn_blocking(move || s2.cache.refresh(s2.config.eager)).await;
            }
        });
    }

    let svc = service(state.clone());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout);
    // Bounded open connections: past the limit a connection is accepted and
    // closed at once, so the backlog cannot pile up idle sockets either.
    let slots = Arc::new(tokio::sync::Semaphore::new(state.config.max_connections));
    let signal = shutdown_signal();
    tokio::pin!(signal);
    // After the signal: keep accepting for `drain_delay` with /ready at 503,
    // so load balancers stop sending before the listener closes.
    let mut drain: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    state.metrics.connections_rejected.inc();
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc.clone()));
                let fut = graceful.watch(conn);
                let open = state.metrics.connections_open.clone();
                open.inc();
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::debug!(error = %e, "connection closed with error");
                    }
                    open.dec();
                    drop(slot);
                });
            }
            _ = &mut signal, if drain.is_none() => {
                tracing::info!(drain_delay_ms = state.config.drain_delay.as_millis() as u64, "shutdown signal: draining");
                state.draining.store(true, Ordering::SeqCst);
                drain = Some(Box::pin(tokio::time::sleep(state.config.drain_delay)));
            }
            _ = async {
                match drain.as_mut() {
                    Some(d) => d.await,
                    None => std::future::pending().await,
                }
            } => break,
        }
    }
    drop(listener);
    match tokio::time::timeout(state.config.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections drained"),
        Err(_) => tracing::warn!("shutdown timeout reached with connections still open"),
    }
    Ok(())
}
