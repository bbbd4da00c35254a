//! Shared pieces of the kernel tests: the skip rule and tiny eBPF objects.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{io::Write as _, path::PathBuf};

use ferret_bpf::{
    Insn, Reg, Size,
    insn::{AluOp, JmpOp, helper},
    object::{MapDef, ObjectDef, ProgramDef},
};
use ferret_kernel::{Mount, ensure_tracefs, privileges};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const MAP_HASH: u32 = 1;
pub const MAP_ARRAY: u32 = 2;
pub const MAP_PERCPU_ARRAY: u32 = 6;
pub const MAP_STACK_TRACE: u32 = 7;
pub const MAP_RINGBUF: u32 = 27;

/// What a kernel test needs: privileges and tracefs. `None` means skip:
/// under CI (`CI=true`) that is a failure, elsewhere a loud notice.
pub fn kernel() -> Option<PathBuf> {
    let reason = match privileges::check() {
        Err(e) => e.to_string(),
        Ok(()) => match ensure_tracefs() {
            Ok(Mount { path, .. }) => return Some(path),
            Err(e) => e.to_string(),
        },
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("kernel test cannot run under CI: {reason}");
    }
    // Straight to the stderr handle: the test harness captures eprintln!.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    None
}

pub fn map(name: &str, map_type: u32, key_size: u32, value_size: u32, max: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries: max,
        map_flags: 0,
    }
}

pub fn program(
    section: &str,
    name: &str,
    insns: Vec<Insn>,
    relocs: Vec<(usize, usize)>,
) -> ProgramDef {
    ProgramDef {
        section: section.into(),
        name: name.into(),
        insns,
        map_relocations: relocs,
        subprograms: Vec::new(),
    }
}

pub fn object(maps: Vec<MapDef>, programs: Vec<ProgramDef>) -> ObjectDef {
    ObjectDef {
        license: "GPL".into(),
        maps,
        programs,
    }
}

/// `map[0] += 1` (u64 value in an array map at index `map_idx`), returns
/// `ret`. The relocation list is returned alongside.
pub fn count_insns(map_idx: usize, ret: i32) -> (Vec<Insn>, Vec<(usize, usize)>) {
    let mut insns = vec![
        Insn::store_imm(Size::W, Reg::FP, -4, 0),
        Insn::mov64_reg(Reg::R2, Reg::FP),
        Insn::alu64_imm(AluOp::Add, Reg::R2, -4),
    ];
    insns.extend(Insn::ld_map_fd(Reg::R1)); // index 3
    insns.extend([
        Insn::call(helper::MAP_LOOKUP_ELEM),
        Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 2),
        Insn::mov64_imm(Reg::R1, 1),
        Insn::atomic_add(Size::DW, Reg::R0, 0, Reg::R1),
        Insn::mov64_imm(Reg::R0, ret),
        Insn::exit(),
    ]);
    (insns, vec![(3, map_idx)])
}

/// An object with one array map `counter` and one counting program.
pub fn counter_object(section: &str, name: &str) -> ObjectDef {
    let (insns, relocs) = count_insns(0, 0);
    object(
        vec![map("counter", MAP_ARRAY, 4, 8, 1)],
        vec![program(section, name, insns, relocs)],
    )
}

pub fn u64_at(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_ne_bytes(b)
}

pub fn getppid_a_few_times(n: usize) {
    for _ in 0..n {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
}

pub fn counter_value(obj: &ferret_kernel::LoadedObject) -> Result<u64, Box<dyn std::error::Error>> {
    let map = obj.map("counter")?;
    let value = map.lookup(&0u32.to_ne_bytes())?.ok_or("no value")?;
    Ok(u64_at(&value))
}
