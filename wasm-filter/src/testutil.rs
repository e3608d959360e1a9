//! Test doubles for the host-facing traits.

use crate::breaker::store::{HostError, SetError, SharedData, Stored};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Shared data as Envoy keeps it: a value and a CAS token bumped on each write.
#[derive(Default)]
pub struct FakeStore {
    pub map: RefCell<BTreeMap<String, (Vec<u8>, u32)>>,
    /// Writes that fail with CasMismatch before one succeeds (other workers).
    pub interfering_writes: RefCell<u32>,
    pub fail_gets: bool,
    pub sets: RefCell<u32>,
    pub gets: RefCell<u32>,
}

impl SharedData for FakeStore {
    fn get(&self, key: &str) -> Result<Stored, HostError> {
        *self.gets.borrow_mut() += 1;
        if self.fail_gets {
            return Err(HostError);
        }
        Ok(match self.map.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        *self.sets.borrow_mut() += 1;
        let mut map = self.map.borrow_mut();
        let current = map.get(key).map(|(_, c)| *c);
        if *self.interfering_writes.borrow() > 0 {
            *self.interfering_writes.borrow_mut() -= 1;
            if let Some(entry) = map.get_mut(key) {
                entry.1 += 1;
            }
            return Err(SetError::CasMismatch);
        }
        if let (Some(want), Some(have)) = (cas, current) {
            if want != have {
                return Err(SetError::CasMismatch);
            }
        }
        map.insert(key.to_string(), (value.to_vec(), current.unwrap_or(0) + 1));
        Ok(())
    }
}
