//! An eBPF object as data: maps, and programs with their instructions and
//! map relocations. `ferret-kernel` loads it as it is (no ELF file in
//! between): it creates the maps, patches each map load with the map's fd
//! and hands every program to `BPF_PROG_LOAD`.

use std::collections::HashSet;
use std::fmt;

use crate::Insn;

/// A map to create (`BPF_MAP_CREATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// The name the loader knows the map by (and gives the kernel,
    /// shortened to 15 characters).
    pub name: String,
    /// `BPF_MAP_TYPE_*`
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

/// One program: its section (`tracepoint/x`, `perf_event`, `raw_tp/x`,
/// `kprobe/f`, ...: the part before the first `/` decides the program
/// type), its name, and its instructions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramDef {
    pub section: String,
    pub name: String,
    pub insns: Vec<Insn>,
    /// (instruction index of an `ld_map_fd`, index into the object's maps)
    pub map_relocations: Vec<(usize, usize)>,
    /// Instruction index where each bpf-to-bpf subprogram starts (callees
    /// of `call` with `src_reg = BPF_PSEUDO_CALL` and callbacks loaded with
    /// `BPF_PSEUDO_FUNC`), ascending. The main program starts at 0 and is
    /// not listed. When not empty the loader gives the kernel BTF
    /// `func_info` for every function, which the verifier demands for
    /// callbacks.
    pub subprograms: Vec<usize>,
}

/// Everything that goes into one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectDef {
    pub license: String,
    pub maps: Vec<MapDef>,
    pub programs: Vec<ProgramDef>,
}

/// The license used when [`ObjectDef::license`] is empty. Many tracing
/// helpers are GPL-only, so anything else would make programs fail to load.
pub const DEFAULT_LICENSE: &str = "GPL";

/// A reason an [`ObjectDef`] cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidObject {
    /// Two maps or two programs share a name.
    DuplicateName(String),
    /// A program has no instructions.
    EmptyProgram(String),
    /// A relocation names a map index past the end of [`ObjectDef::maps`].
    NoSuchMap { program: String, map_index: usize },
    /// A relocation's instruction is not the first half of an `ld_imm64`.
    NotLdImm64 { program: String, insn_index: usize },
    /// Subprogram starts are not ascending, start at 0, or lie outside the
    /// program.
    BadSubprograms { program: String },
    /// The license contains a NUL byte.
    BadLicense,
}

impl fmt::Display for InvalidObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateName(name) => write!(f, "duplicate name `{name}`"),
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
            Self::BadSubprograms { program } => write!(
                f,
                "program `{program}`: subprogram starts must ascend within the program, after 0"
            ),
            Self::BadLicense => f.write_str("license string contains a NUL byte"),
        }
    }
}

impl std::error::Error for InvalidObject {}

impl ObjectDef {
    /// Checks names, relocation targets, subprogram starts and the license.
    pub fn validate(&self) -> Result<(), InvalidObject> {
        if self.license.contains('\0') {
            return Err(InvalidObject::BadLicense);
        }
        let mut names = HashSet::new();
        for name in self.maps.iter().map(|m| &m.name) {
            if !names.insert(name.as_str()) {
                return Err(InvalidObject::DuplicateName(name.clone()));
            }
        }
        names.clear();
        for name in self.programs.iter().map(|p| &p.name) {
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
            let mut previous = 0;
            for &start in &prog.subprograms {
                if start <= previous || start >= prog.insns.len() {
                    return Err(InvalidObject::BadSubprograms {
                        program: prog.name.clone(),
                    });
                }
                previous = start;
            }
        }
        Ok(())
    }

    /// The license to give the kernel.
    pub fn license(&self) -> &str {
        if self.license.is_empty() {
            DEFAULT_LICENSE
        } else {
            &self.license
        }
    }
}

fn is_ld_imm64_at(insns: &[Insn], index: usize) -> bool {
    insns.get(index).is_some_and(Insn::is_ld_imm64) && index + 1 < insns.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reg;

    fn trivial(section: &str, name: &str) -> ProgramDef {
        ProgramDef {
            section: section.to_owned(),
            name: name.to_owned(),
            insns: vec![Insn::mov64_imm(Reg::R0, 0), Insn::exit()],
            ..ProgramDef::default()
        }
    }

    fn array(name: &str) -> MapDef {
        MapDef {
            name: name.to_owned(),
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            map_flags: 0,
        }
    }

    #[test]
    fn default_license() {
        let mut def = ObjectDef::default();
        assert_eq!(def.license(), DEFAULT_LICENSE);
        def.license = "Dual MIT/GPL".into();
        assert_eq!(def.license(), "Dual MIT/GPL");
        def.license.push('\0');
        assert_eq!(def.validate(), Err(InvalidObject::BadLicense));
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
        def.maps.push(array("m"));
        assert!(matches!(
            def.validate(),
            Err(InvalidObject::NotLdImm64 { insn_index: 0, .. })
        ));
        def.programs[0].map_relocations.clear();
        assert_eq!(def.validate(), Ok(()));
        // A map and a program may share a name; two programs may not.
        def.programs.push(trivial("perf_event", "m"));
        assert_eq!(def.validate(), Ok(()));
        def.programs.push(trivial("perf_event", "m"));
        assert_eq!(
            def.validate(),
            Err(InvalidObject::DuplicateName("m".to_owned()))
        );
        def.programs.pop();
        def.maps.push(array("m"));
        assert_eq!(
            def.validate(),
            Err(InvalidObject::DuplicateName("m".to_owned()))
        );
    }

    #[test]
    fn validate_checks_subprogram_starts() {
        let mut def = ObjectDef {
            programs: vec![trivial("raw_tp/x", "p")],
            ..ObjectDef::default()
        };
        def.programs[0].subprograms = vec![1];
        assert_eq!(def.validate(), Ok(()));
        for bad in [vec![0], vec![2], vec![1, 1]] {
            def.programs[0].subprograms = bad;
            assert!(matches!(
                def.validate(),
                Err(InvalidObject::BadSubprograms { .. })
            ));
        }
        def.programs[0].insns.clear();
        assert!(matches!(
            def.validate(),
            Err(InvalidObject::EmptyProgram(_))
        ));
    }
}
