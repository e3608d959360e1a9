//! Read-modify-write of breakers in Envoy shared data with compare-and-swap.
//! Shared data is behind [`SharedData`] so the retry logic runs in unit tests.

use super::Breaker;
use crate::backend::Backend;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Why a write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// Someone wrote the key since it was read: read again and retry.
    CasMismatch,
    /// Any other hostcall failure: give up, never panic.
    Host,
}

/// A hostcall failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError;

/// A shared-data value and its CAS token; `(None, None)` when the key is absent.
pub type Stored = (Option<Vec<u8>>, Option<u32>);

/// The two shared-data hostcalls the breaker needs.
pub trait SharedData {
    fn get(&self, key: &str) -> Result<Stored, HostError>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
}

/// Shared-data key of a backend's breaker. Shared data lives per Wasm `vm_id`
/// and never expires: two keys, bounded.
pub fn key(backend: Backend) -> &'static str {
    match backend {
        Backend::Python => "nd_filter/breaker/python",
        Backend::Rust => "nd_filter/breaker/rust",
    }
}

/// A breaker as read, with the CAS token to write it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub breaker: Breaker,
    pub cas: Option<u32>,
}

/// Reads a breaker. Absent, unreadable or foreign bytes read as closed: a
/// broken store must not take traffic away.
pub fn load(store: &dyn SharedData, key: &str) -> Snapshot {
    match store.get(key) {
        Ok((Some(bytes), cas)) => Snapshot {
            breaker: Breaker::decode(&bytes).unwrap_or_default(),
            cas,
        },
        Ok((None, cas)) => Snapshot {
            breaker: Breaker::default(),
            cas,
        },
        Err(HostError) => Snapshot {
            breaker: Breaker::default(),
            cas: None,
        },
    }
}

/// Creates the key if it does not exist, so every later write can use CAS.
pub fn ensure(store: &dyn SharedData, key: &str) {
    if let Ok((None, _)) = store.get(key) {
        // Racing initializers all write the same closed breaker.
        let _ = store.set(key, &Breaker::default().encode(), None);
    }
}

/// The result of [`update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Updated<R> {
    /// What the closure returned on the attempt that was stored (or the last one).
    pub value: R,
    pub before: Breaker,
    pub after: Breaker,
    /// False when the change could not be written (CAS lost too often, or a
    /// hostcall failed); `value` then must not be acted on as if stored.
    pub stored: bool,
}

/// CAS attempts before giving up; contention is two or a few workers.
pub const MAX_ATTEMPTS: usize = 8;

/// Applies `f` to the stored breaker and writes the result back if it
/// changed, retrying on CAS mismatch. `first` is a snapshot already read (it
/// saves a hostcall on the common path). No write happens when `f` changes
/// nothing.
pub fn update<R>(
    store: &dyn SharedData,
    key: &str,
    first: Option<Snapshot>,
    mut f: impl FnMut(&mut Breaker) -> R,
) -> Updated<R> {
    let mut snap = first.unwrap_or_else(|| load(store, key));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = snap.breaker;
        let mut after = before;
        let value = f(&mut after);
        if after == before {
            return Updated {
                value,
                before,
                after,
                stored: true,
            };
        }
        match store.set(key, &after.encode(), snap.cas) {
            Ok(()) => {
                return Updated {
                    value,
                    before,
                    after,
                    stored: true,
                }
            }
            Err(SetError::CasMismatch) if attempt < MAX_ATTEMPTS => snap = load(store, key),
            Err(_) => {
                return Updated {
                    value,
                    before,
                    after,
                    stored: false,
                }
            }
        }
    }
}

/// A per-VM read cache in front of shared data, so the common path makes no
/// shared-data hostcall at all. A write goes through and drops the entry (the
/// next read fetches the new CAS token); a CAS mismatch drops it too, so the
/// retry in [`update`] reads fresh data. `clear` (every root tick) bounds how
/// long a worker that neither writes nor fails can miss another worker's
/// change; a worker that sees a failure reads fresh data at once.
pub struct Cached<S> {
    inner: S,
    entries: RefCell<BTreeMap<String, Stored>>,
}

impl<S: SharedData> Cached<S> {
    pub const fn new(inner: S) -> Cached<S> {
        Cached {
            inner,
            entries: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn clear(&self) {
        self.entries.borrow_mut().clear();
    }

    fn forget(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }
}

impl<S: SharedData> SharedData for Cached<S> {
    fn get(&self, key: &str) -> Result<Stored, HostError> {
        if let Some(hit) = self.entries.borrow().get(key) {
            return Ok(hit.clone());
        }
        let fresh = self.inner.get(key)?;
        self.entries
            .borrow_mut()
            .insert(key.to_string(), fresh.clone());
        Ok(fresh)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        self.forget(key);
        self.inner.set(key, value, cas)
    }
}

#[cfg(test)]
mod tests;
