//! Name → type hash tables. An entry is a name's offset in the BTF string
//! table and a type id packed in a u64: names are read back from the string
//! table when comparing, so indexing tens of thousands of names allocates no
//! strings.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::TypeId;

#[derive(Default)]
pub(crate) struct NameIndex {
    table: HashTable<u64>,
    hasher: FixedState,
}

fn pack(name_off: u32, id: TypeId) -> u64 {
    (u64::from(name_off) << 32) | u64::from(id)
}

fn name_off(entry: u64) -> u32 {
    (entry >> 32) as u32
}

impl NameIndex {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            table: HashTable::with_capacity(n),
            hasher: FixedState::default(),
        }
    }

    /// Adds type `id` named by the string at `off` unless that name is
    /// already there: the first definition wins. `name` reads the string
    /// table.
    pub fn insert<'s>(&mut self, off: u32, id: TypeId, name: impl Fn(u32) -> &'s [u8]) {
        let hasher = &self.hasher;
        let key = name(off);
        let hash = hasher.hash_one(key);
        if let Entry::Vacant(slot) = self.table.entry(
            hash,
            |&e| name(name_off(e)) == key,
            |&e| hasher.hash_one(name(name_off(e))),
        ) {
            slot.insert(pack(off, id));
        }
    }

    pub fn find<'s>(&self, key: &[u8], name: impl Fn(u32) -> &'s [u8]) -> Option<TypeId> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |&e| name(name_off(e)) == key)
            .map(|&e| e as TypeId)
    }

    /// The string offsets of every name in the index.
    pub fn name_offsets(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().map(|&e| name_off(e))
    }

    pub fn ids(&self) -> impl Iterator<Item = TypeId> + '_ {
        self.table.iter().map(|&e| e as TypeId)
    }
}
