//! A relocatable eBPF ELF object, written in memory, as aya's loader reads it.

use crate::Insn;

/// A map in the legacy `maps` section (`struct bpf_map_def`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Symbol name; also the name the loader knows the map by.
    pub name: String,
    /// `BPF_MAP_TYPE_*`
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

/// One program: its section (`tracepoint/x`, `perf_event`, `raw_tp/x`), its
/// symbol name, and its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDef {
    pub section: String,
    pub name: String,
    pub insns: Vec<Insn>,
    /// (instruction index of an `ld_map_fd`, index into the object's maps)
    pub map_relocations: Vec<(usize, usize)>,
}

/// Everything that goes into one object file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectDef {
    pub license: String,
    pub maps: Vec<MapDef>,
    pub programs: Vec<ProgramDef>,
}

/// Writes `object` as an ELF64 little-endian EM_BPF relocatable file.
pub fn write_object(_object: &ObjectDef) -> Result<Vec<u8>, object::write::Error> {
    unimplemented!("ELF writer")
}
