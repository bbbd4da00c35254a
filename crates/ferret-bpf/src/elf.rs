//! A relocatable eBPF ELF object, written in memory, as aya's loader reads it.
//!
//! The layout is the minimal one `aya_obj::Object::parse` accepts:
//!
//! * one executable section per program, named after its program type
//!   (`tracepoint/...`, `raw_tp/...`, `perf_event`), holding a single global
//!   `STT_FUNC` symbol that covers the whole section;
//! * a `license` section with a NUL-terminated string;
//! * a legacy `maps` section of 28-byte `struct bpf_map_def` entries, one
//!   `STT_OBJECT` symbol per map (the symbol name is the map name);
//! * `R_BPF_64_64` relocations from each `ld_imm64` that loads a map to the
//!   map's symbol, which the loader resolves to the map's fd.
//!
//! aya wants the bytes 4-byte aligned when it parses them. A `Vec<u8>` is
//! usually aligned enough but nothing guarantees it, so the loader should
//! copy the result into a `u64`-backed buffer before handing it to aya.

use std::collections::HashSet;
use std::fmt;

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};

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

/// Size of one legacy `struct bpf_map_def` entry.
pub const MAP_DEF_SIZE: usize = 28;

/// The license written when [`ObjectDef::license`] is empty. Many tracing
/// helpers are GPL-only, so anything else would make programs fail to load.
pub const DEFAULT_LICENSE: &str = "GPL";

/// A reason an [`ObjectDef`] cannot become a loadable object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidObject {
    /// Two maps or two programs share a symbol name.
    DuplicateName(String),
    /// A program has no instructions (aya skips empty sections).
    EmptyProgram(String),
    /// A relocation names a map index past the end of [`ObjectDef::maps`].
    NoSuchMap { program: String, map_index: usize },
    /// A relocation's instruction is not the first half of an `ld_imm64`.
    NotLdImm64 { program: String, insn_index: usize },
    /// The license contains a NUL byte.
    BadLicense,
}

impl fmt::Display for InvalidObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateName(name) => write!(f, "duplicate symbol name `{name}`"),
            Self::EmptyProgram(name) => write!(f, "program `{name}` has no instructions"),
            Self::NoSuchMap { program, map_index } => {
                write!(
                    f,
                    "program `{program}` relocates against missing map #{map_index}"
                )
            }
            Self::NotLdImm64 {
                program,
                insn_index,
            } => write!(
                f,
                "program `{program}`: map relocation at insn {insn_index} is not an ld_imm64"
            ),
            Self::BadLicense => f.write_str("license string contains a NUL byte"),
        }
    }
}

impl std::error::Error for InvalidObject {}

impl MapDef {
    /// The 28-byte little-endian `struct bpf_map_def` (id and pinning 0).
    pub fn encode(&self) -> [u8; MAP_DEF_SIZE] {
        let fields = [
            self.map_type,
            self.key_size,
            self.value_size,
            self.max_entries,
            self.map_flags,
            0, // id
            0, // pinning: none
        ];
        let mut out = [0u8; MAP_DEF_SIZE];
        for (chunk, field) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }
}

impl ObjectDef {
    /// Checks what [`write_object`] cannot report through its error type:
    /// names, relocation targets and the license. Code generation should
    /// call this (or be trusted to get it right) before writing.
    pub fn validate(&self) -> Result<(), InvalidObject> {
        if self.license.contains('\0') {
            return Err(InvalidObject::BadLicense);
        }
        let mut names = HashSet::new();
        for name in self
            .maps
            .iter()
            .map(|m| &m.name)
            .chain(self.programs.iter().map(|p| &p.name))
        {
            if !names.insert(name.as_str()) {
                return Err(InvalidObject::DuplicateName(name.clone()));
            }
        }
        for prog in &self.programs {
            if prog.insns.is_empty() {
                return Err(InvalidObject::EmptyProgram(prog.name.clone()));
            }
            for &(insn_index, map_index) in &prog.map_relocations {
                if map_index >= self.maps.len() {
                    return Err(InvalidObject::NoSuchMap {
                        program: prog.name.clone(),
                        map_index,
                    });
                }
                if !is_ld_imm64_at(&prog.insns, insn_index) {
                    return Err(InvalidObject::NotLdImm64 {
                        program: prog.name.clone(),
                        insn_index,
                    });
                }
            }
        }
        Ok(())
    }
}

fn is_ld_imm64_at(insns: &[Insn], index: usize) -> bool {
    insns.get(index).is_some_and(Insn::is_ld_imm64) && index + 1 < insns.len()
}

/// Writes `object` as an ELF64 little-endian EM_BPF relocatable file.
///
/// `object` should pass [`ObjectDef::validate`]; `object::write::Error`
/// cannot carry our own messages, so relocations naming a missing map or a
/// non-`ld_imm64` instruction are left out here (the verifier then rejects
/// the load) rather than reported.
///
/// Programs whose sections would collide get `/<name>` appended, which aya
/// ignores when it derives the program type from the section name.
pub fn write_object(object: &ObjectDef) -> Result<Vec<u8>, object::write::Error> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let license = if object.license.is_empty() {
        DEFAULT_LICENSE
    } else {
        object.license.as_str()
    };
    let license_section = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    let mut license_bytes = license.as_bytes().to_vec();
    license_bytes.push(0);
    obj.append_section_data(license_section, &license_bytes, 1);

    // aya rejects a `maps` section without symbols, so omit it when empty.
    let mut map_symbols: Vec<SymbolId> = Vec::with_capacity(object.maps.len());
    if !object.maps.is_empty() {
        let maps_section = obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
        for map in &object.maps {
            let sym = obj.add_symbol(global_symbol(&map.name, SymbolKind::Data));
            obj.add_symbol_data(sym, maps_section, &map.encode(), 4);
            map_symbols.push(sym);
        }
    }

    let mut used_sections: HashSet<String> = HashSet::new();
    for prog in &object.programs {
        let section_name = unique_section_name(&prog.section, &prog.name, &mut used_sections);
        let section: SectionId =
            obj.add_section(Vec::new(), section_name.into_bytes(), SectionKind::Text);
        let code: Vec<u8> = prog.insns.iter().flat_map(|i| i.encode()).collect();
        let sym = obj.add_symbol(global_symbol(&prog.name, SymbolKind::Text));
        obj.add_symbol_data(sym, section, &code, 8);

        for &(insn_index, map_index) in &prog.map_relocations {
            let Some(&map_sym) = map_symbols.get(map_index) else {
                continue;
            };
            if !is_ld_imm64_at(&prog.insns, insn_index) {
                continue;
            }
            obj.add_relocation(
                section,
                Relocation {
                    offset: (insn_index * 8) as u64,
                    symbol: map_sym,
                    addend: 0,
                    flags: RelocationFlags::Elf {
                        r_type: object::elf::R_BPF_64_64,
                    },
                },
            )?;
        }
    }

    obj.write()
}

/// A defined global symbol; address and size are filled in by
/// `add_symbol_data`.
fn global_symbol(name: &str, kind: SymbolKind) -> Symbol {
    Symbol {
        name: name.as_bytes().to_vec(),
        value: 0,
        size: 0,
        kind,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::None,
    }
}

/// aya keys sections by name, so two programs must not share one.
fn unique_section_name(section: &str, prog: &str, used: &mut HashSet<String>) -> String {
    let mut name = section.to_owned();
    if used.contains(&name) {
        name = format!("{section}/{prog}");
    }
    let mut n = 2usize;
    while used.contains(&name) {
        name = format!("{section}/{prog}.{n}");
        n += 1;
    }
    used.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use aya_obj::ProgramSection;

    use super::*;
    use crate::insn::{AluOp, helper};
    use crate::{Reg, Size};

    const BPF_MAP_TYPE_HASH: u32 = 1;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;

    /// `counts[0] += 1` style program: key on the stack, lookup, add.
    fn lookup_prog(section: &str, name: &str, map_index: usize) -> ProgramDef {
        let mut insns = vec![
            Insn::store_imm(Size::W, Reg::FP, -4, 0),
            Insn::mov64_reg(Reg::R2, Reg::FP),
            Insn::alu64_imm(AluOp::Add, Reg::R2, -4),
        ];
        let reloc_at = insns.len();
        insns.extend(Insn::ld_map_fd(Reg::R1));
        insns.push(Insn::call(helper::MAP_LOOKUP_ELEM));
        insns.push(Insn::mov64_imm(Reg::R0, 0));
        insns.push(Insn::exit());
        ProgramDef {
            section: section.to_owned(),
            name: name.to_owned(),
            insns,
            map_relocations: vec![(reloc_at, map_index)],
        }
    }

    fn sample() -> ObjectDef {
        ObjectDef {
            license: "GPL".to_owned(),
            maps: vec![
                MapDef {
                    name: "counts".to_owned(),
                    map_type: BPF_MAP_TYPE_HASH,
                    key_size: 8,
                    value_size: 8,
                    max_entries: 4096,
                    map_flags: 0,
                },
                MapDef {
                    name: "scratch".to_owned(),
                    map_type: BPF_MAP_TYPE_ARRAY,
                    key_size: 4,
                    value_size: 64,
                    max_entries: 1,
                    map_flags: 0,
                },
            ],
            programs: vec![
                lookup_prog("tracepoint/syscalls/sys_enter_openat", "p0", 0),
                lookup_prog("perf_event", "p1", 1),
                lookup_prog("perf_event", "p2", 0),
            ],
        }
    }

    #[test]
    fn aya_parses_and_relocates() {
        let def = sample();
        def.validate().unwrap();
        let bytes = write_object(&def).unwrap();
        // Parse from an 8-aligned copy, as the loader must.
        let mut buf = vec![0u8; bytes.len() + 8];
        let pad = buf.as_ptr().align_offset(8);
        let aligned = &mut buf[pad..pad + bytes.len()];
        aligned.copy_from_slice(&bytes);
        let mut obj = aya_obj::Object::parse(aligned).unwrap();

        assert_eq!(obj.license.to_str().unwrap(), "GPL");
        assert_eq!(obj.programs.len(), 3);
        assert!(matches!(
            obj.programs["p0"].section,
            ProgramSection::TracePoint
        ));
        assert!(matches!(
            obj.programs["p1"].section,
            ProgramSection::PerfEvent
        ));
        assert!(matches!(
            obj.programs["p2"].section,
            ProgramSection::PerfEvent
        ));

        assert_eq!(obj.maps.len(), 2);
        let counts = &obj.maps["counts"];
        assert_eq!(counts.map_type(), BPF_MAP_TYPE_HASH);
        assert_eq!(
            (counts.key_size(), counts.value_size(), counts.max_entries()),
            (8, 8, 4096)
        );
        let scratch = &obj.maps["scratch"];
        assert_eq!(scratch.map_type(), BPF_MAP_TYPE_ARRAY);
        assert_eq!(
            (
                scratch.key_size(),
                scratch.value_size(),
                scratch.max_entries()
            ),
            (4, 64, 1)
        );

        let fds: HashMap<&str, i32> = [("counts", 100), ("scratch", 200)].into();
        let maps = obj.maps.clone();
        obj.relocate_maps(
            maps.iter()
                .map(|(name, map)| (name.as_str(), fds[name.as_str()], map)),
            &HashSet::new(),
        )
        .unwrap();

        for (prog, fd) in [("p0", 100), ("p1", 200), ("p2", 100)] {
            let key = obj.programs[prog].function_key();
            let func = &obj.functions[&key];
            assert_eq!(func.name, prog);
            assert_eq!(func.instructions.len(), def.programs[0].insns.len());
            let (at, _) = def.programs[0].map_relocations[0];
            let ins = &func.instructions[at];
            assert_eq!(ins.code, 0x18);
            assert_eq!(ins.src_reg(), 1, "{prog}");
            assert_eq!(ins.imm, fd, "{prog}");
        }
    }

    fn trivial(section: &str, name: &str) -> ProgramDef {
        ProgramDef {
            section: section.to_owned(),
            name: name.to_owned(),
            insns: vec![Insn::mov64_imm(Reg::R0, 0), Insn::exit()],
            map_relocations: Vec::new(),
        }
    }

    #[test]
    fn no_maps_and_default_license() {
        let def = ObjectDef {
            license: String::new(),
            maps: Vec::new(),
            programs: vec![trivial("raw_tp/ferret_begin", "begin")],
        };
        let bytes = write_object(&def).unwrap();
        let obj = aya_obj::Object::parse(&bytes).unwrap();
        assert!(obj.maps.is_empty());
        assert_eq!(obj.license.to_str().unwrap(), DEFAULT_LICENSE);
        let key = obj.programs["begin"].function_key();
        assert_eq!(obj.functions[&key].instructions.len(), 2);
    }

    #[test]
    fn colliding_sections_get_unique_names() {
        let mut used = HashSet::new();
        assert_eq!(
            unique_section_name("perf_event", "a", &mut used),
            "perf_event"
        );
        assert_eq!(
            unique_section_name("perf_event", "b", &mut used),
            "perf_event/b"
        );
        assert_eq!(
            unique_section_name("perf_event", "b", &mut used),
            "perf_event/b.2"
        );
    }

    #[test]
    fn map_def_layout() {
        let m = MapDef {
            name: "m".to_owned(),
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 16,
            map_flags: 1,
        };
        let b = m.encode();
        assert_eq!(&b[..4], &2u32.to_le_bytes());
        assert_eq!(&b[12..16], &16u32.to_le_bytes());
        assert_eq!(&b[16..20], &1u32.to_le_bytes());
        assert_eq!(&b[20..], &[0; 8]);
    }

    #[test]
    fn validate_catches_bad_relocations() {
        let mut def = ObjectDef {
            license: "GPL".to_owned(),
            maps: Vec::new(),
            programs: vec![trivial("perf_event", "p")],
        };
        def.programs[0].map_relocations.push((0, 0));
        assert!(matches!(
            def.validate(),
            Err(InvalidObject::NoSuchMap { map_index: 0, .. })
        ));
        def.maps.push(MapDef {
            name: "m".to_owned(),
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            map_flags: 0,
        });
        assert!(matches!(
            def.validate(),
            Err(InvalidObject::NotLdImm64 { insn_index: 0, .. })
        ));
        def.programs[0].map_relocations.clear();
        def.programs.push(trivial("perf_event", "m"));
        assert_eq!(
            def.validate(),
            Err(InvalidObject::DuplicateName("m".to_owned()))
        );
    }
}
