//! The model cache. Requests read the current set of bundles through an
//! `ArcSwap` (no lock on the request path). A load holds its bundle's own
//! lock while it waits for the files to settle and reads them, so loads of
//! different bundles run in parallel and two loads of one bundle read it
//! once; only the swap (clone the snapshot, insert, evict, store) holds the
//! one writer mutex, for microseconds. A reader sees either the old bundle or
//! the new one, never a half-loaded one. Bounded by `cache_size` with
//! least-recently-used eviction.

use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use nd_forecast::bundle::{Bundle, LoadError};
use nd_forecast::error::{ApiError, ErrorCode};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What a bundle directory looks like on disk: file names, sizes and mtimes.
/// Cheap to take; a change means the bundle may have a new version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(String, u64, u128)>);

impl Fingerprint {
    pub fn of(dir: &Path) -> std::io::Result<Fingerprint> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let meta = std::fs::metadata(e.path())?;
            if !meta.is_file() {
                continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            files.push((
                e.file_name().to_string_lossy().into_owned(),
                meta.len(),
                mtime,
            ));
        }
        files.sort();
        Ok(Fingerprint(files))
    }

    /// How long ago the most recently modified file changed.
    fn youngest_age(&self) -> std::time::Duration {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let newest = self.0.iter().map(|f| f.2).max().unwrap_or(0);
        std::time::Duration::from_nanos(now.saturating_sub(newest).min(u64::MAX as u128) as u64)
    }
}

/// A bundle is read only once its files have not changed for this long, so
/// a write during the read always moves an mtime past the fingerprint taken
/// before it (mtimes tick coarsely; an in-place rewrite of the same size
/// would otherwise go unnoticed and mix two versions).
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(1000);

pub struct CachedBundle {
    pub bundle: Bundle,
    pub fingerprint: Fingerprint,
    last_used: AtomicU64,
}

#[derive(Default, Clone)]
pub struct Snapshot {
    pub bundles: BTreeMap<String, Arc<CachedBundle>>,
    /// Bundles that could not be loaded and have no previous version, with why.
    pub failed: BTreeMap<String, String>,
}

pub struct ModelCache {
    root: PathBuf,
    cache_size: usize,
    default_model: Option<String>,
    metrics: Arc<Metrics>,
    current: ArcSwap<Snapshot>,
    /// Held while a new snapshot is built from the current one and stored.
    writer: Mutex<()>,
    /// One lock per bundle name, held across a load's settle wait and read.
    loading: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Reads a bundle directory (`Bundle::load`; tests put a gate in front).
    read: Box<ReadBundle>,
    clock: AtomicU64,
    /// Versions already refused (fingerprint, why), so a broken version is
    /// not re-read on every tick or request.
    refused: Mutex<BTreeMap<String, (Fingerprint, String)>>,
}

type ReadBundle = dyn Fn(&Path) -> Result<Bundle, LoadError> + Send + Sync;

/// A bundle name is a plain directory name under the model path.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
}

impl ModelCache {
    pub fn new(
        root: PathBuf,
        cache_size: usize,
        default_model: Option<String>,
        metrics: Arc<Metrics>,
    ) -> ModelCache {
        ModelCache {
            root,
            cache_size: cache_size.max(1),
            default_model,
            metrics,
            current: ArcSwap::from_pointee(Snapshot::default()),
            writer: Mutex::new(()),
            loading: Mutex::new(HashMap::new()),
            read: Box::new(Bundle::load),
            clock: AtomicU64::new(1),
            refused: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Why the version now on disk was refused, if it was (for /models: a
    /// loaded bundle keeps serving its previous version meanwhile).
    pub fn refusal(&self, name: &str) -> Option<String> {
        self.refused.lock().get(name).map(|(_, why)| why.clone())
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Bundle directory names under the model path, sorted.
    pub fn on_disk(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| valid_name(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Which bundle a request means: `?model=`, else the configured default,
    /// else the only bundle there is.
    pub fn resolve(&self, requested: Option<&str>) -> Result<String, ApiError> {
        if let Some(n) = requested {
            return Ok(n.to_string());
        }
        if let Some(d) = &self.default_model {
            return Ok(d.clone());
        }
        let snap = self.snapshot();
        let mut names: Vec<String> = snap.bundles.keys().cloned().collect();
        for n in self.on_disk() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        match names.len() {
            1 => Ok(names.remove(0)),
            0 => Err(ApiError::new(ErrorCode::NotReady, "no bundle is loaded")),
            _ => Err(ApiError::new(
                ErrorCode::ModelRequired,
                format!(
                    "several bundles are loaded ({}); choose one with ?model=",
                    names.join(", ")
                ),
            )),
        }
    }

    /// A loaded bundle without touching the disk or any lock, if present.
    pub fn get_loaded(&self, name: &str) -> Option<Arc<CachedBundle>> {
        let snap = self.current.load();
        let b = snap.bundles.get(name)?;
        b.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.metrics.cache_hits.inc();
        Some(b.clone())
    }

    /// A bundle by name, loading it if needed. Blocking (disk reads): call
    /// from a blocking thread when it may load.
    pub fn get(&self, name: &str) -> Result<Arc<CachedBundle>, ApiError> {
        if let Some(b) = self.get_loaded(name) {
            return Ok(b);
        }
        if !valid_name(name) || !self.root.join(name).is_dir() {
            return Err(ApiError::new(
                ErrorCode::UnknownModel,
                format!("no bundle named '{name}' under the model path"),
            ));
        }
        self.metrics.cache_misses.inc();
        if let Some((fp, why)) = self.refused.lock().get(name) {
            if Fingerprint::of(&self.root.join(name)).ok().as_ref() == Some(fp) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedModel,
                    format!("bundle '{name}': {why}"),
                ));
            }
        }
        match self.load(name) {
            Ok(b) => Ok(b),
            Err(e) => Err(ApiError::new(ErrorCode::UnsupportedModel, format!("{e}"))),
        }
    }

    /// `name`'s own lock: held by a load (settle wait and read) and a removal.
    fn load_lock(&self, name: &str) -> Arc<Mutex<()>> {
        self.loading
            .lock()
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Loads (or reloads) `name` and swaps it in. On failure the previous
    /// version, if any, keeps serving.
    pub fn load(&self, name: &str) -> Result<Arc<CachedBundle>, LoadError> {
        let lock = self.load_lock(name);
        let _loading = lock.lock();
        let dir = self.root.join(name);
        let fail = |message: String| LoadError {
            bundle: name.to_string(),
            message,
        };
        let list = |dir: &Path| {
            Fingerprint::of(dir).map_err(|e| fail(format!("cannot list {}: {e}", dir.display())))
        };
        let mut before = list(&dir)?;
        // The version serving now, if any (we hold this bundle's load lock:
        // no other load replaces it meanwhile).
        let previous = self.current.load().bundles.get(name).cloned();
        if let Some(b) = previous.as_ref().filter(|b| b.fingerprint == before) {
            return Ok(b.clone());
        }
        let age = before.youngest_age();
        if age < SETTLE {
            std::thread::sleep(SETTLE - age);
            let settled = list(&dir)?;
            if settled != before {
                // Still being written: not a failure, the next check retries.
                tracing::info!(
                    bundle = name,
                    "bundle is being written; will load it once settled"
                );
                return Err(fail("the bundle is being written; retry shortly".into()));
            }
            before = settled;
        }
        let result = (self.read)(&dir).and_then(|bundle| {
            // A bundle rewritten while we read it may mix two versions: refuse it
            // and try again on the next check.
            let after = Fingerprint::of(&dir)
                .map_err(|e| fail(format!("cannot list {}: {e}", dir.display())))?;
            if after != before {
                return Err(fail(
                    "bundle changed while it was being read; will retry".into(),
                ));
            }
            // A new version must serve at least what the previous one did:
            // a model that cannot run (unknown class, option) is fine in a
            // bundle seen for the first time (reported in /models), not as a
            // replacement for one that serves.
            if let Some(prev) = &previous {
                let serves = |b: &Bundle| b.unsupported_reason().is_none();
                if serves(&prev.bundle) && !serves(&bundle) {
                    return Err(fail(format!(
                        "the new version cannot be served: {}",
                        bundle.unsupported_reason().unwrap_or_default()
                    )));
                }
            }
            Ok(bundle)
        });
        match result {
            Ok(bundle) => {
                for m in bundle.models.iter() {
                    if let Err(why) = &m.net {
                        tracing::warn!(bundle = name, model = %m.name, class = %m.class, reason = %why, "model in bundle cannot be served");
                    }
                }
                let entry = Arc::new(CachedBundle {
                    bundle,
                    fingerprint: before,
                    last_used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
                });
                self.update(|next| {
                    next.failed.remove(name);
                    next.bundles.insert(name.to_string(), entry.clone());
                    self.evict_over_bound(next, name);
                    true
                });
                self.refused.lock().remove(name);
                let labels = Metrics::bundle(name);
                self.metrics.cache_loads.get_or_create(&labels).inc();
                // At 0 from the first load, so its rate is defined before any refusal.
                let _ = self.metrics.reload_failures.get_or_create(&labels);
                tracing::info!(bundle = name, hash = %entry.bundle.content_hash, models = entry.bundle.models.len(), bytes = entry.bundle.memory_bytes, "bundle loaded");
                Ok(entry)
            }
            Err(e) => {
                self.metrics
                    .reload_failures
                    .get_or_create(&Metrics::bundle(name))
                    .inc();
                self.refused
                    .lock()
                    .insert(name.to_string(), (before, e.message.clone()));
                let first = self.update(|next| {
                    let first = !next.bundles.contains_key(name);
                    if first {
                        next.failed.insert(name.to_string(), e.message.clone());
                    }
                    first
                });
                if first {
                    tracing::error!(bundle = name, error = %e.message, "bundle refused");
                } else {
                    tracing::error!(bundle = name, error = %e.message, "new bundle version refused; the previous version keeps serving");
                }
                Err(e)
            }
        }
    }

    fn evict_over_bound(&self, next: &mut Snapshot, keep: &str) {
        while next.bundles.len() > self.cache_size {
            let victim = next
                .bundles
                .iter()
                .filter(|(n, _)| n.as_str() != keep)
                .min_by_key(|(_, b)| b.last_used.load(Ordering::Relaxed))
                .map(|(n, _)| n.clone());
            let Some(v) = victim else { break };
            next.bundles.remove(&v);
            self.metrics.model_memory.remove(&Metrics::bundle(&v));
            self.metrics.cache_evictions.inc();
            tracing::info!(bundle = %v, "bundle evicted (least recently used)");
        }
    }

    /// Builds the next snapshot from the current one under the writer lock
    /// and stores it when `change` says it changed anything.
    fn update(&self, change: impl FnOnce(&mut Snapshot) -> bool) -> bool {
        let _w = self.writer.lock();
        let mut next = (**self.current.load()).clone();
        let changed = change(&mut next);
        if changed {
            self.publish(next);
        }
        changed
    }

    fn publish(&self, next: Snapshot) {
        self.metrics.bundles_loaded.set(next.bundles.len() as i64);
        for (n, b) in &next.bundles {
            self.metrics
                .model_memory
                .get_or_create(&Metrics::bundle(n))
                .set(b.bundle.memory_bytes as i64);
        }
        self.current.store(Arc::new(next));
    }

    /// Loads every bundle on disk (up to the cache bound). Returns how many loaded.
    pub fn load_all(&self) -> usize {
        let mut ok = 0;
        for name in self.on_disk().into_iter().take(self.cache_size) {
            if self.load(&name).is_ok() {
                ok += 1;
            }
        }
        ok
    }

    /// One hot-reload pass: reload loaded bundles whose files changed, drop
    /// ones whose directory is gone, and (when `discover`) load new ones.
    pub fn refresh(&self, discover: bool) {
        let snap = self.snapshot();
        let on_disk = self.on_disk();
        for (name, entry) in &snap.bundles {
            let dir = self.root.join(name);
            match Fingerprint::of(&dir) {
                Ok(fp) if fp == entry.fingerprint => {}
                Ok(fp) => {
                    if self.refused.lock().get(name).map(|r| &r.0) == Some(&fp) {
                        continue;
                    }
                    let _ = self.load(name);
                }
                Err(_) if !dir.exists() => self.remove(name),
                Err(e) => {
                    tracing::warn!(bundle = %name, error = %e, "cannot check bundle for changes")
                }
            }
        }
        if discover {
            for name in on_disk {
                if snap.bundles.contains_key(&name) || snap.bundles.len() >= self.cache_size {
                    continue;
                }
                let fp = Fingerprint::of(&self.root.join(&name)).unwrap_or_default();
                if self.refused.lock().get(&name).map(|r| &r.0) == Some(&fp) {
                    continue;
                }
                let _ = self.load(&name);
            }
        }
    }

    fn remove(&self, name: &str) {
        let lock = self.load_lock(name);
        let _loading = lock.lock();
        let removed = self.update(|next| next.bundles.remove(name).is_some());
        if removed {
            self.metrics.model_memory.remove(&Metrics::bundle(name));
            tracing::info!(bundle = name, "bundle directory removed; unloaded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/bundles")
            .join(name)
    }

    fn copy_into(src: &str, dst: &Path) {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(fixture(src)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }

    fn cache(root: &Path, size: usize) -> Arc<ModelCache> {
        Arc::new(ModelCache::new(
            root.to_path_buf(),
            size,
            None,
            Arc::new(Metrics::new()),
        ))
    }

    #[test]
    fn readers_never_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        copy_into("mlp_d_standard", &dir.path().join("m"));
        let c = cache(dir.path(), 4);
        c.load("m").unwrap();
        let guard = c.writer.lock(); // a load in progress holds this
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = c.clone();
        std::thread::spawn(move || {
            let _ = tx.send(reader.get_loaded("m").is_some());
        });
        // If reads took the writer lock this would never arrive while we hold it.
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));
        drop(guard);
    }

    #[test]
    fn readers_see_whole_versions_while_reloads_swap_them() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m");
        copy_into("mlp_d_standard", &m);
        let c = cache(dir.path(), 4);
        let a = c.load("m").unwrap().bundle.content_hash.clone();
        let stop = Arc::new(AtomicBool::new(false));
        // The version each reader read last: every swap below waits until
        // both readers have read the version it loaded.
        let last: Arc<[Mutex<String>; 2]> = Arc::new(Default::default());
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let (c, stop, last) = (c.clone(), stop.clone(), last.clone());
                std::thread::spawn(move || {
                    let mut seen = std::collections::BTreeSet::new();
                    while !stop.load(Ordering::Relaxed) {
                        let b = c.get_loaded("m").expect("a version is always there");
                        // A whole version: hash and models belong together.
                        let class = b.bundle.models[0].class.clone();
                        let n_cols = b.bundle.output_columns().len();
                        last[i].lock().clone_from(&b.bundle.content_hash);
                        seen.insert((b.bundle.content_hash.clone(), class, n_cols));
                    }
                    seen
                })
            })
            .collect();
        let mut serving = a.clone();
        for i in 0..20 {
            let (src, class) = if i % 2 == 0 {
                ("nlinear_d_robust", "NLinear")
            } else {
                ("mlp_d_standard", "MLP")
            };
            let tmp = dir.path().join("next");
            copy_into(src, &tmp);
            std::fs::remove_dir_all(&m).unwrap();
            std::fs::rename(&tmp, &m).unwrap();
            let loaded = c.load("m").unwrap_or_else(|e| panic!("reload {i}: {e}"));
            assert_eq!(loaded.bundle.models[0].class, class, "reload {i}");
            assert_ne!(
                loaded.bundle.content_hash, serving,
                "reload {i} swapped nothing"
            );
            serving = loaded.bundle.content_hash.clone();
            // A hang guard, not a speed bound: the readers spin without pause.
            let give_up = std::time::Instant::now() + Duration::from_secs(120);
            while last.iter().any(|l| *l.lock() != serving) {
                assert!(
                    std::time::Instant::now() < give_up,
                    "a reader never read reload {i}"
                );
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut versions = std::collections::BTreeSet::new();
        for r in readers {
            versions.extend(r.join().unwrap());
        }
        for (hash, class, cols) in &versions {
            let expected = if *hash == a { "MLP" } else { "NLinear" };
            assert_eq!(class, expected, "hash {hash} paired with {class}");
            assert_eq!(*cols, 1);
        }
        assert_eq!(
            versions.len(),
            2,
            "the readers read both versions: {versions:?}"
        );
    }

    /// Two first loads of different bundles: the one of `b` completes while
    /// the read of `a` is held in the middle (a global load lock would keep
    /// `b` waiting behind `a`), and two loads of one bundle read it once.
    #[test]
    fn first_loads_of_different_bundles_run_in_parallel() {
        let dir = tempfile::tempdir().unwrap();
        copy_into("mlp_d_standard", &dir.path().join("a"));
        copy_into("nlinear_d_robust", &dir.path().join("b"));
        let (entered_tx, entered) = std::sync::mpsc::channel::<String>();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let entered_tx = Mutex::new(entered_tx);
        let mut c = ModelCache::new(dir.path().to_path_buf(), 4, None, Arc::new(Metrics::new()));
        c.read = Box::new(move |p: &Path| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let _ = entered_tx.lock().send(name.clone());
            if name == "a" {
                let _ = gate.lock().recv_timeout(Duration::from_secs(60));
            }
            Bundle::load(p)
        });
        let c = Arc::new(c);
        let (ca, cb) = (c.clone(), c.clone());
        let a = std::thread::spawn(move || ca.load("a").map(|b| b.bundle.content_hash.clone()));
        assert_eq!(
            entered.recv_timeout(Duration::from_secs(30)).as_deref(),
            Ok("a")
        );
        // a's read is now held at the gate.
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(cb.load("b").is_ok());
        });
        assert_eq!(
            done.recv_timeout(Duration::from_secs(30)),
            Ok(true),
            "b waited behind a"
        );
        assert!(c.get_loaded("b").is_some() && c.get_loaded("a").is_none());
        // A second load of `a` waits for the first and does not read again.
        let ca2 = c.clone();
        let second =
            std::thread::spawn(move || ca2.load("a").map(|b| b.bundle.content_hash.clone()));
        release.send(()).unwrap();
        let first = a.join().unwrap().unwrap();
        assert_eq!(second.join().unwrap().unwrap(), first);
        let reads: Vec<String> = entered.try_iter().collect();
        assert_eq!(reads, vec!["b".to_string()], "a was read twice");
        assert_eq!(c.snapshot().bundles.len(), 2);
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a", "b", "c"] {
            copy_into("nlinear_d_robust", &dir.path().join(n));
        }
        let c = cache(dir.path(), 2);
        c.load("a").unwrap();
        c.load("b").unwrap();
        assert!(c.get_loaded("a").is_some()); // a is now more recent than b
        c.get("c").unwrap();
        let names: Vec<String> = c.snapshot().bundles.keys().cloned().collect();
        assert_eq!(names, vec!["a".to_string(), "c".to_string()]);
        // b comes back on demand.
        assert!(c.get("b").is_ok());
        assert_eq!(c.snapshot().bundles.len(), 2);
    }

    #[test]
    fn unknown_and_hostile_names_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), 2);
        for name in ["nope", "..", "../etc", ".hidden", "a/b", ""] {
            let e = c.get(name).err().unwrap();
            assert_eq!(e.code.as_str(), "unknown_model", "{name}");
        }
    }

    #[test]
    fn broken_bundle_is_reported_and_previous_version_kept() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m");
        copy_into("mlp_d_standard", &m);
        let c = cache(dir.path(), 2);
        let good = c.load("m").unwrap().bundle.content_hash.clone();
        std::fs::write(m.join("configuration.json"), b"{not json").unwrap();
        let e = c.load("m").err().unwrap();
        assert!(e.message.contains("configuration.json"), "{}", e.message);
        assert_eq!(c.get_loaded("m").unwrap().bundle.content_hash, good);
        // A bundle broken from the start is listed as failed.
        let n = dir.path().join("n");
        std::fs::create_dir_all(&n).unwrap();
        std::fs::write(n.join("configuration.json"), b"{}").unwrap();
        assert!(c.load("n").is_err());
        assert!(c.snapshot().failed.contains_key("n"));
    }
}
