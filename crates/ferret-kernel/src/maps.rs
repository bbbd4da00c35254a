//! Untyped access to BPF maps whose key and value layouts are only known at
//! run time (they come from the compiled script, not from Rust types).

use std::{
    collections::HashSet,
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
};

use ferret_bpf::{insn::map_type, object::MapDef};

use crate::{
    cpus,
    error::{KernelError, Result},
    sys,
};

/// A map handle that owns a duplicate of the map's fd, so it stays valid
/// independently of the [`crate::LoadedObject`] it came from.
#[derive(Debug)]
pub struct RawMap {
    name: String,
    fd: OwnedFd,
    /// `BPF_MAP_TYPE_*`
    map_type: u32,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    /// Per-CPU slots in a value (1 for ordinary maps).
    slots: usize,
}

/// A key and its value on every possible CPU.
pub type PerCpuEntry = (Vec<u8>, Vec<Vec<u8>>);

const fn round_up8(n: usize) -> usize {
    (n + 7) & !7
}

impl RawMap {
    /// A handle on the map `def` describes, created as `fd`.
    pub(crate) fn new(def: &MapDef, fd: BorrowedFd<'_>) -> Result<Self> {
        let fd = fd.try_clone_to_owned().map_err(|e| KernelError::Map {
            map: def.name.clone(),
            op: "dup",
            source: e,
        })?;
        let slots = if is_percpu(def.map_type) {
            cpus::possible_count()?
        } else {
            1
        };
        Ok(Self {
            name: def.name.clone(),
            fd,
            map_type: def.map_type,
            key_size: def.key_size as usize,
            value_size: def.value_size as usize,
            max_entries: def.max_entries,
            slots,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// `BPF_MAP_TYPE_*`
    pub fn map_type(&self) -> u32 {
        self.map_type
    }
    pub fn key_size(&self) -> usize {
        self.key_size
    }
    /// Size of one value (of one CPU's value for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size
    }
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }
    pub fn is_percpu(&self) -> bool {
        is_percpu(self.map_type)
    }
    fn is_array(&self) -> bool {
        matches!(self.map_type, map_type::ARRAY | map_type::PERCPU_ARRAY)
    }

    /// Bytes the kernel reads/writes per value: for per-CPU maps, one slot
    /// rounded up to 8 bytes for every possible CPU.
    pub fn raw_value_size(&self) -> usize {
        if self.is_percpu() {
            round_up8(self.value_size) * self.slots
        } else {
            self.value_size
        }
    }

    fn err(&self, op: &'static str, source: std::io::Error) -> KernelError {
        KernelError::Map {
            map: self.name.clone(),
            op,
            source,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() == self.key_size {
            Ok(())
        } else {
            Err(KernelError::MapSize {
                map: self.name.clone(),
                what: "key",
                got: key.len(),
                expected: self.key_size,
            })
        }
    }

    /// Splits a raw per-CPU value into one `value_size` slice per CPU.
    fn split(&self, raw: &[u8]) -> Vec<Vec<u8>> {
        raw.chunks(round_up8(self.value_size).max(1))
            .map(|c| c.get(..self.value_size).unwrap_or(c).to_vec())
            .collect()
    }

    /// All keys. A key deleted concurrently makes the kernel restart from the
    /// first key, so duplicates are dropped and the walk is bounded.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        let mut next = vec![0u8; self.key_size];
        let mut prev: Option<Vec<u8>> = None;
        let limit = self.max_entries as usize;
        while keys.len() < limit {
            // SAFETY: `prev` (a key returned by the kernel) and `next` are
            // both exactly key_size bytes.
            let more = unsafe { sys::next_key(self.fd.as_fd(), prev.as_deref(), &mut next) }
                .map_err(|e| self.err("BPF_MAP_GET_NEXT_KEY", e))?;
            if !more || !seen.insert(next.clone()) {
                break;
            }
            keys.push(next.clone());
            prev = Some(next.clone());
        }
        Ok(keys)
    }

    /// The raw value under `key` (for per-CPU maps, every CPU's slot).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        let mut value = vec![0u8; self.raw_value_size()];
        // SAFETY: key is key_size bytes (checked) and value is the full size
        // the kernel writes for this map type.
        let found = unsafe { sys::lookup(self.fd.as_fd(), key, &mut value) }
            .map_err(|e| self.err("BPF_MAP_LOOKUP_ELEM", e))?;
        Ok(found.then_some(value))
    }

    /// One value per possible CPU, each `value_size` bytes.
    pub fn lookup_percpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        if !self.is_percpu() {
            return Err(KernelError::WrongMapType {
                map: self.name.clone(),
                expected: "per-CPU",
            });
        }
        Ok(self.lookup(key)?.map(|raw| self.split(&raw)))
    }

    /// Every `(key, raw value)`; keys that vanish meanwhile are skipped.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for key in self.keys()? {
            if let Some(value) = self.lookup(&key)? {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    /// Every `(key, per-CPU values)` of a per-CPU map.
    pub fn percpu_entries(&self) -> Result<Vec<PerCpuEntry>> {
        if !self.is_percpu() {
            return Err(KernelError::WrongMapType {
                map: self.name.clone(),
                expected: "per-CPU",
            });
        }
        Ok(self
            .entries()?
            .into_iter()
            .map(|(k, raw)| {
                let values = self.split(&raw);
                (k, values)
            })
            .collect())
    }

    /// Stores a raw value (`raw_value_size()` bytes) under `key`.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_key(key)?;
        if value.len() != self.raw_value_size() {
            return Err(KernelError::MapSize {
                map: self.name.clone(),
                what: "value",
                got: value.len(),
                expected: self.raw_value_size(),
            });
        }
        // SAFETY: key and value sizes were checked against the map's.
        unsafe { sys::update(self.fd.as_fd(), key, value, sys::BPF_ANY) }
            .map_err(|e| self.err("BPF_MAP_UPDATE_ELEM", e))
    }

    /// Removes `key`; `false` if it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check_key(key)?;
        // SAFETY: key is key_size bytes (checked).
        unsafe { sys::delete(self.fd.as_fd(), key) }.map_err(|e| self.err("BPF_MAP_DELETE_ELEM", e))
    }

    /// Empties the map. Array slots cannot be deleted, so they are zeroed.
    pub fn clear(&self) -> Result<()> {
        if self.is_array() {
            return self.zero_values();
        }
        for key in self.keys()? {
            self.delete(&key)?;
        }
        Ok(())
    }

    /// Sets every existing value to zeroes, keeping the keys.
    pub fn zero_values(&self) -> Result<()> {
        let zeroes = vec![0u8; self.raw_value_size()];
        for key in self.keys()? {
            self.update(&key, &zeroes)?;
        }
        Ok(())
    }

    /// The instruction pointers of stack `stack_id` in a stack trace map,
    /// up to the first zero. `None` if the id is not (or no longer) there.
    pub fn stack(&self, stack_id: u32) -> Result<Option<Vec<u64>>> {
        if self.map_type != map_type::STACK_TRACE {
            return Err(KernelError::WrongMapType {
                map: self.name.clone(),
                expected: "stack trace",
            });
        }
        let Some(raw) = self.lookup(&stack_id.to_ne_bytes())? else {
            return Ok(None);
        };
        Ok(Some(
            raw.chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    u64::from_ne_bytes(b)
                })
                .take_while(|&ip| ip != 0)
                .collect(),
        ))
    }
}

fn is_percpu(t: u32) -> bool {
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`
    const PERCPU_CGROUP_STORAGE: u32 = 21;
    matches!(
        t,
        map_type::PERCPU_HASH | map_type::PERCPU_ARRAY | LRU_PERCPU_HASH | PERCPU_CGROUP_STORAGE
    )
}
