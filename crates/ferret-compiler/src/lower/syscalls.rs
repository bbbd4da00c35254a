//! Many `syscalls:sys_enter_*` (or `sys_exit_*`) tracepoints of one probe
//! served by one program on the raw tracepoint `sys_enter` (`sys_exit`).
//!
//! Each perf tracepoint the kernel detaches costs an RCU grace period under
//! a global mutex (about 40 ms), so `tracepoint:syscalls:sys_enter_*` as 360
//! programs takes 13 s to tear down; one raw tracepoint detaches at once.
//! The raw tracepoint fires for every syscall: the program looks the
//! syscall number up in an array holding, for each syscall the probe
//! matches, the probe's name (all zero for the others, which return after
//! that one lookup), and the `probe` builtin copies the name from there.
//! 32-bit (compat) syscalls, which the `syscalls:*` tracepoints skip, are
//! skipped too. `args.FIELD` reads the syscall's registers where every
//! matched tracepoint has that field in the same argument position; bodies
//! reading other fields keep one program per tracepoint.

use std::collections::{HashMap, HashSet};

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};

use super::expr::Res;
use super::{CTX_SLOT, Globals, Lowerer, SysMap, TVal};
use crate::emit::Emitter;
use crate::probes::ResolvedProbe;
use crate::program::Attach;
use crate::syscalls::{CompatCheck, SyscallAbi};
use crate::target::{FieldKind, TracepointField};
use crate::types::Ty;

/// Fewer syscall tracepoints than this keep one program each: they detach
/// quickly enough, and only their own syscalls run a program.
pub(crate) const MIN_SYSCALLS_PER_PROGRAM: usize = 8;

/// Stack slots of a group's program, below the context slot and the
/// 8 bytes the prologue uses as scratch (the scratch map's key).
const TMP_SLOT: i16 = -16;
/// The syscall number, as a u64.
const NR_SLOT: i16 = -24;
/// The pointer to this syscall's entry in the table (the probe's name).
const NAME_SLOT: i16 = -32;
/// Stack bytes a group's program reserves before the body's own.
pub(crate) const GROUP_STACK: i32 = 32;

/// Syscall tracepoints of one probe served by one program.
#[derive(Debug)]
pub(crate) struct SyscallGroup {
    pub exit: bool,
    pub abi: SyscallAbi,
    /// (syscall number, the tracepoint), in the order the probe names them.
    pub members: Vec<(u32, ResolvedProbe)>,
}

/// One kernel program to build: a concrete probe, or a group of syscall
/// tracepoints with a probe standing for all of them.
#[derive(Debug)]
pub(crate) struct Unit {
    pub probe: ResolvedProbe,
    pub group: Option<SyscallGroup>,
}

impl Unit {
    /// The probes it counts as in `Attached N probes`.
    pub fn attach_count(&self) -> usize {
        self.group
            .as_ref()
            .map_or(self.probe.attach.probe_count(), |g| g.members.len())
    }
}

/// `t:syscalls:sys_enter_*` as `tracepoint:syscalls:sys_enter_*`.
fn canonical(attach_point: &str) -> String {
    match attach_point.split_once(':') {
        Some((p, rest)) if p.eq_ignore_ascii_case("t") || p.eq_ignore_ascii_case("tracepoint") => {
            format!("tracepoint:{rest}")
        }
        _ => attach_point.to_string(),
    }
}

/// Splits a probe's concrete probes (each with the attach point it came
/// from) into programs: the syscall tracepoints of each direction that
/// `abi` numbers, when there are enough of them, become one group placed
/// where the first of them was; everything else stays one program each.
/// A tracepoint named twice keeps a program of its own for the repeat.
pub(crate) fn plan(resolved: Vec<(&str, ResolvedProbe)>, abi: Option<SyscallAbi>) -> Vec<Unit> {
    let single = |(_, probe)| Unit { probe, group: None };
    let Some(abi) = abi else {
        return resolved.into_iter().map(single).collect();
    };
    let numbers: HashMap<&str, u32> = abi.entries().map(|(nr, name)| (name, nr)).collect();
    // For each probe: Some((exit, number)) when a group may take it.
    let mut seen = HashSet::new();
    let candidate: Vec<Option<(bool, u32)>> = resolved
        .iter()
        .map(|(_, p)| {
            let Attach::Tracepoint { category, event } = &p.attach else {
                return None;
            };
            if category != "syscalls" || !seen.insert(event.as_str()) {
                return None;
            }
            let (exit, name) = match (
                event.strip_prefix("sys_enter_"),
                event.strip_prefix("sys_exit_"),
            ) {
                (Some(name), _) => (false, name),
                (_, Some(name)) => (true, name),
                _ => return None,
            };
            numbers.get(name).map(|&nr| (exit, nr))
        })
        .collect();
    let grouped = |exit: bool| {
        candidate
            .iter()
            .filter(|c| matches!(c, Some((e, _)) if *e == exit))
            .count()
            >= MIN_SYSCALLS_PER_PROGRAM
    };
    let groups = [grouped(false), grouped(true)];
    let mut units = Vec::new();
    // Index in `units` of each direction's group once placed.
    let mut placed: [Option<usize>; 2] = [None, None];
    let mut sources: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for ((ap, probe), cand) in resolved.into_iter().zip(candidate) {
        let Some((exit, nr)) = cand.filter(|&(exit, _)| groups[usize::from(exit)]) else {
            units.push(single((ap, probe)));
            continue;
        };
        let dir = usize::from(exit);
        let ap = canonical(ap);
        if !sources[dir].contains(&ap) {
            sources[dir].push(ap);
        }
        let at = *placed[dir].get_or_insert_with(|| {
            units.push(Unit {
                probe: probe.clone(),
                group: Some(SyscallGroup {
                    exit,
                    abi,
                    members: Vec::new(),
                }),
            });
            units.len() - 1
        });
        if let Some(group) = units[at].group.as_mut() {
            group.members.push((nr, probe));
        }
    }
    for (dir, at) in placed.into_iter().enumerate() {
        let Some(at) = at else { continue };
        let unit = &mut units[at];
        let tracepoints = unit.group.as_ref().map_or(0, |g| g.members.len());
        unit.probe = ResolvedProbe {
            name: sources[dir].join(","),
            attach: Attach::RawSyscalls {
                exit: dir == 1,
                tracepoints,
            },
            format: None,
        };
    }
    units
}

/// Where a group's program finds an `args` field.
enum ArgSource {
    /// The syscall number, saved by the dispatch.
    Number,
    /// The raw tracepoint's second argument: `sys_exit`'s return value.
    Ret,
    /// `pt_regs` at this offset.
    Regs(u32),
}

impl SyscallGroup {
    /// `field` as every member has it, with where to read it; None when the
    /// members disagree or the field is not a syscall argument.
    fn common_field(&self, field: &str) -> Option<(TracepointField, ArgSource)> {
        let mut fields = self
            .members
            .iter()
            .map(|(_, p)| p.format.as_ref().and_then(|f| f.field(field)));
        let first = fields.next()??.clone();
        let same = |f: &TracepointField| {
            (f.offset, f.size, f.signed, f.kind)
                == (first.offset, first.size, first.signed, first.kind)
        };
        if !fields.all(|f| f.is_some_and(same)) {
            return None;
        }
        if !matches!(first.kind, FieldKind::Integer | FieldKind::Pointer) {
            return None;
        }
        let source = if field == "__syscall_nr" {
            ArgSource::Number
        } else if self.exit {
            (field == "ret" && first.size == 8).then_some(ArgSource::Ret)?
        } else {
            // Arguments follow the number as unsigned longs from offset 16.
            let position = first.offset.checked_sub(16)?;
            let offset = self.abi.arg_offsets.get((position / 8) as usize)?;
            (position % 8 == 0 && first.size == 8).then_some(ArgSource::Regs(*offset))?
        };
        Some((first, source))
    }

    /// The table entries: syscall number → the member's name, zero-padded
    /// to `cap` bytes.
    pub fn table(&self, cap: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.members
            .iter()
            .map(|(nr, p)| {
                let mut name = p.name.as_bytes().to_vec();
                name.resize(cap as usize, 0);
                (nr.to_le_bytes().to_vec(), name)
            })
            .collect()
    }
}

impl Lowerer<'_, '_> {
    /// `args.field` in a group's program. When the members do not share
    /// the field, the body needs one program per tracepoint: marks it so
    /// and types the field as the first member has it, as the program of
    /// that member would.
    pub(crate) fn group_arg(&mut self, group: &SyscallGroup, field: &str) -> Option<Res<TVal>> {
        let Some((f, source)) = group.common_field(field) else {
            self.mixed_args = true;
            return None;
        };
        let ctx = |l: &mut Self, reg| l.e.push(Insn::load(Size::DW, reg, Reg::FP, CTX_SLOT));
        match source {
            ArgSource::Number => self.e.push(Insn::load(Size::DW, Reg::R0, Reg::FP, NR_SLOT)),
            ArgSource::Ret => {
                ctx(self, Reg::R1);
                self.e.push(Insn::load(Size::DW, Reg::R0, Reg::R1, 8));
            }
            ArgSource::Regs(offset) => {
                let tmp = self.alloc_mem(8, false);
                ctx(self, Reg::R3);
                self.e.push(Insn::load(Size::DW, Reg::R3, Reg::R3, 0));
                self.e
                    .push(Insn::alu64_imm(AluOp::Add, Reg::R3, offset as i32));
                self.addr_of(tmp, Reg::R1);
                self.e.push(Insn::mov64_imm(Reg::R2, 8));
                self.e.push(Insn::call(helper::PROBE_READ_KERNEL));
                self.e
                    .push(Insn::load(Size::DW, Reg::R0, tmp.reg(), tmp.off16()));
            }
        }
        let signed = f.signed && f.kind == FieldKind::Integer;
        let bytes = f.size.min(8) as u8;
        self.narrow(Reg::R0, bytes, signed);
        Some(Ok(self.temp_from(Reg::R0, Ty::Int { bytes, signed })))
    }

    /// `probe` in a group's program: the name in this syscall's entry.
    pub(crate) fn group_probe_name(&mut self) -> TVal {
        let cap = self.probe_cap;
        let place = self.alloc_mem(cap, false);
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, NAME_SLOT));
        for i in (0..cap).step_by(8) {
            self.e
                .push(Insn::load(Size::DW, Reg::R2, Reg::R1, i as i16));
            let p = place.at(i);
            self.e
                .push(Insn::store(Size::DW, p.reg(), p.off16(), Reg::R2));
        }
        TVal::new(super::Val::Mem(place), Ty::Str { cap })
    }
}

/// The start of a group's program, right after the context is saved: finds
/// the syscall's entry in the table and jumps to the epilogue (recorded in
/// `to_epilogue`) for syscalls the probe does not match and compat ones.
pub(crate) fn emit_dispatch(
    g: &mut Globals,
    pro: &mut Emitter,
    to_epilogue: &mut Vec<usize>,
    group: &SyscallGroup,
    probe_cap: u32,
) {
    let abi = &group.abi;
    let mut exit_if = |pro: &mut Emitter, op: JmpOp, reg: Reg, imm: i32| {
        to_epilogue.push(pro.next_index());
        pro.push(Insn::jmp_imm(op, reg, imm, 0));
    };
    // r1 holds the context: the raw tracepoint's (pt_regs *regs, long id_or_ret).
    if group.exit {
        // sys_exit's number is the one in pt_regs, as its tracepoints read it.
        pro.push(Insn::store_imm(Size::DW, Reg::FP, NR_SLOT, 0));
        pro.push(Insn::load(Size::DW, Reg::R3, Reg::R1, 0));
        pro.push(Insn::alu64_imm(AluOp::Add, Reg::R3, abi.nr_offset as i32));
        pro.push(Insn::mov64_reg(Reg::R1, Reg::FP));
        pro.push(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(NR_SLOT)));
        pro.push(Insn::mov64_imm(Reg::R2, abi.nr_size as i32));
        pro.push(Insn::call(helper::PROBE_READ_KERNEL));
        exit_if(pro, JmpOp::Jne, Reg::R0, 0);
        pro.push(Insn::load(Size::DW, Reg::R2, Reg::FP, NR_SLOT));
    } else {
        pro.push(Insn::load(Size::DW, Reg::R2, Reg::R1, 8));
    }
    // Unsigned: negative numbers (no syscall) are out of range too.
    exit_if(pro, JmpOp::Jgt, Reg::R2, abi.max_number() as i32);
    pro.push(Insn::store(Size::DW, Reg::FP, NR_SLOT, Reg::R2));
    let id = g.syscall_tables;
    g.syscall_tables += 1;
    let map = g.obj_map(SysMap::SyscallProbes {
        id,
        value_size: probe_cap,
        max_entries: abi.max_number() + 1,
    });
    let symbol = g.obj_maps[map].name.clone();
    g.map_entries.extend(
        group
            .table(probe_cap)
            .into_iter()
            .map(|(k, v)| (symbol.clone(), k, v)),
    );
    pro.load_map(Reg::R1, map);
    pro.push(Insn::mov64_reg(Reg::R2, Reg::FP));
    pro.push(Insn::alu64_imm(AluOp::Add, Reg::R2, i32::from(NR_SLOT)));
    pro.push(Insn::call(helper::MAP_LOOKUP_ELEM));
    exit_if(pro, JmpOp::Jeq, Reg::R0, 0);
    // An all-zero entry: a syscall this probe does not match.
    pro.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
    exit_if(pro, JmpOp::Jeq, Reg::R1, 0);
    pro.push(Insn::store(Size::DW, Reg::FP, NAME_SLOT, Reg::R0));
    match abi.compat {
        CompatCheck::TaskU32 { offset, mask: _ } => {
            pro.push(Insn::call(helper::GET_CURRENT_TASK));
            pro.push(Insn::mov64_reg(Reg::R3, Reg::R0));
            pro.push(Insn::alu64_imm(AluOp::Add, Reg::R3, offset as i32));
            pro.push(Insn::mov64_reg(Reg::R1, Reg::FP));
            pro.push(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(TMP_SLOT)));
            pro.push(Insn::mov64_imm(Reg::R2, 4));
            pro.push(Insn::call(helper::PROBE_READ_KERNEL));
            pro.push(Insn::load(Size::W, Reg::R1, Reg::FP, TMP_SLOT));
        }
        CompatCheck::RegsU64 { offset, mask: _ } => {
            pro.push(Insn::load(Size::DW, Reg::R3, Reg::FP, CTX_SLOT));
            pro.push(Insn::load(Size::DW, Reg::R3, Reg::R3, 0));
            pro.push(Insn::alu64_imm(AluOp::Add, Reg::R3, offset as i32));
            pro.push(Insn::mov64_reg(Reg::R1, Reg::FP));
            pro.push(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(TMP_SLOT)));
            pro.push(Insn::mov64_imm(Reg::R2, 8));
            pro.push(Insn::call(helper::PROBE_READ_KERNEL));
            pro.push(Insn::load(Size::DW, Reg::R1, Reg::FP, TMP_SLOT));
        }
    }
    let (CompatCheck::TaskU32 { mask, .. } | CompatCheck::RegsU64 { mask, .. }) = abi.compat;
    pro.push(Insn::alu64_imm(AluOp::And, Reg::R1, mask as i32));
    exit_if(pro, JmpOp::Jne, Reg::R1, 0);
}
