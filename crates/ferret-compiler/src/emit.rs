//! An instruction buffer with forward labels, map relocations and
//! references to other functions (loop callbacks), resolved into final jump
//! offsets once a function is complete.

use std::ops::Range;

use ferret_bpf::{AluOp, Insn, JmpOp, Reg};
use ferret_syntax::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Debug, Default)]
pub struct Emitter {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (jump instruction index, target)
    fixups: Vec<(usize, Label)>,
    /// (ld_imm64 instruction index, object map index)
    map_relocs: Vec<(usize, usize)>,
    /// (ld_imm64 instruction index, callback number)
    func_relocs: Vec<(usize, usize)>,
    /// Code between two labels that stands for a piece of source (a
    /// loop), for pointing the verifier's complaints at it.
    tracked: Vec<(Label, Label, Span)>,
}

/// A finished function: its instructions, (instruction index, object map
/// index) relocations, and (instruction index, callback number) loads of
/// callback addresses.
#[derive(Debug, Default)]
pub struct Assembled {
    pub insns: Vec<Insn>,
    pub map_relocs: Vec<(usize, usize)>,
    pub func_relocs: Vec<(usize, usize)>,
    /// The instructions of each tracked piece of source.
    pub tracked: Vec<(Range<usize>, Span)>,
}

/// Jumps the verifier cannot take: more than i16::MAX instructions away.
#[derive(Debug)]
pub struct JumpTooFar;

impl Emitter {
    pub fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    pub fn push2(&mut self, pair: [Insn; 2]) {
        self.insns.extend(pair);
    }

    /// The index the next instruction pushed will have.
    pub fn next_index(&self) -> usize {
        self.insns.len()
    }

    pub fn new_label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// The next instruction emitted is `label`'s target.
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    pub fn jump(&mut self, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.push(Insn::ja(0));
    }

    pub fn jump_if_imm(&mut self, op: JmpOp, reg: Reg, imm: i32, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.push(Insn::jmp_imm(op, reg, imm, 0));
    }

    pub fn jump_if_reg(&mut self, op: JmpOp, a: Reg, b: Reg, label: Label) {
        self.fixups.push((self.insns.len(), label));
        self.push(Insn::jmp_reg(op, a, b, 0));
    }

    /// `reg = &map`
    pub fn load_map(&mut self, reg: Reg, map_index: usize) {
        self.map_relocs.push((self.insns.len(), map_index));
        self.push2(Insn::ld_map_fd(reg));
    }

    /// `reg = &callback` (a `BPF_PSEUDO_FUNC` load whose offset is set when
    /// the program's functions are laid out).
    pub fn load_func(&mut self, reg: Reg, callback: usize) {
        self.func_relocs.push((self.insns.len(), callback));
        let [mut lo, hi] = Insn::ld_imm64(reg, 0);
        lo.src = ferret_bpf::insn::BPF_PSEUDO_FUNC;
        self.push2([lo, hi]);
    }

    /// Records that the code from `start` to `end` (both bound) is `span`.
    pub fn track(&mut self, start: Label, end: Label, span: Span) {
        self.tracked.push((start, end, span));
    }

    /// Whether any jump goes to `label`.
    pub fn is_used(&self, label: Label) -> bool {
        self.fixups.iter().any(|&(_, l)| l == label)
    }

    /// `reg = value`, in one instruction when the value fits 32 bits.
    pub fn mov_imm(&mut self, reg: Reg, value: i64) {
        match i32::try_from(value) {
            Ok(v) => self.push(Insn::mov64_imm(reg, v)),
            Err(_) => self.push2(Insn::ld_imm64(reg, value as u64)),
        }
    }

    /// `reg op= value`, materializing large immediates in `spare`.
    pub fn alu_imm(&mut self, op: AluOp, reg: Reg, value: i64, spare: Reg) {
        match i32::try_from(value) {
            Ok(v) => self.push(Insn::alu64_imm(op, reg, v)),
            Err(_) => {
                self.push2(Insn::ld_imm64(spare, value as u64));
                self.push(Insn::alu64_reg(op, reg, spare));
            }
        }
    }

    /// The instructions with every jump resolved, and the relocations.
    pub fn finish(mut self) -> Result<Assembled, JumpTooFar> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].unwrap_or(self.insns.len());
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| JumpTooFar)?;
        }
        let at = |l: Label| self.labels[l.0].unwrap_or(self.insns.len());
        let tracked = self
            .tracked
            .iter()
            .map(|&(start, end, span)| (at(start)..at(end), span))
            .collect();
        drop_unreachable(Assembled {
            insns: self.insns,
            map_relocs: self.map_relocs,
            func_relocs: self.func_relocs,
            tracked,
        })
    }
}

/// Removes the instructions no path from the first one reaches (code after
/// `exit()` or `return`, the jump over an else branch that follows one):
/// the verifier rejects a program holding any. Jump offsets and
/// relocations are renumbered.
fn drop_unreachable(asm: Assembled) -> Result<Assembled, JumpTooFar> {
    use ferret_bpf::insn::{BPF_EXIT, BPF_JA, BPF_JMP};
    let insns = asm.insns;
    let n = insns.len();
    let target = |i: usize| i as i64 + 1 + i64::from(insns[i].off);
    let mut live = vec![false; n];
    let mut work = vec![0usize];
    while let Some(i) = work.pop() {
        if i >= n || live[i] {
            continue;
        }
        live[i] = true;
        let insn = &insns[i];
        if insn.is_ld_imm64() {
            if i + 1 < n {
                live[i + 1] = true;
            }
            work.push(i + 2);
            continue;
        }
        let op = insn.code & 0xf0;
        if insn.is_jump() {
            if let Ok(t) = usize::try_from(target(i)) {
                work.push(t);
            }
            if !(insn.class() == BPF_JMP && op == BPF_JA) {
                work.push(i + 1);
            }
        } else if !(insn.class() == BPF_JMP && op == BPF_EXIT) {
            work.push(i + 1);
        }
    }
    if live.iter().all(|&l| l) {
        return Ok(Assembled { insns, ..asm });
    }
    // new_index[i]: where old instruction i (or the next live one) lands.
    let mut new_index = Vec::with_capacity(n + 1);
    let mut next = 0usize;
    for &l in &live {
        new_index.push(next);
        next += usize::from(l);
    }
    new_index.push(next);
    let mut out = Vec::with_capacity(next);
    for (i, insn) in insns.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let mut insn = *insn;
        if insn.is_jump() {
            let t = usize::try_from(target(i)).unwrap_or(0).min(n);
            let off = new_index[t] as i64 - new_index[i] as i64 - 1;
            insn.off = i16::try_from(off).map_err(|_| JumpTooFar)?;
        }
        out.push(insn);
    }
    let renumber = |relocs: Vec<(usize, usize)>| -> Vec<(usize, usize)> {
        relocs
            .into_iter()
            .filter(|&(at, _)| live[at])
            .map(|(at, target)| (new_index[at], target))
            .collect()
    };
    Ok(Assembled {
        insns: out,
        map_relocs: renumber(asm.map_relocs),
        func_relocs: renumber(asm.func_relocs),
        tracked: asm
            .tracked
            .into_iter()
            .map(|(r, span)| (new_index[r.start.min(n)]..new_index[r.end.min(n)], span))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_after_an_unconditional_jump_is_dropped_and_jumps_renumbered() {
        let mut e = Emitter::default();
        let end = e.new_label();
        e.jump_if_imm(JmpOp::Jeq, Reg::R1, 0, end);
        e.push(Insn::mov64_imm(Reg::R0, 1));
        e.jump(end);
        // Unreachable: what `exit(); printf(...)` used to leave behind.
        e.push(Insn::mov64_imm(Reg::R0, 2));
        e.load_map(Reg::R1, 0);
        e.bind(end);
        e.load_map(Reg::R2, 1);
        e.push(Insn::exit());
        let Assembled {
            insns, map_relocs, ..
        } = e.finish().unwrap();
        let [l1, l2] = Insn::ld_map_fd(Reg::R2);
        assert_eq!(
            insns,
            vec![
                Insn::jmp_imm(JmpOp::Jeq, Reg::R1, 0, 2),
                Insn::mov64_imm(Reg::R0, 1),
                Insn::ja(0),
                l1,
                l2,
                Insn::exit(),
            ]
        );
        assert_eq!(map_relocs, vec![(3, 1)]);
    }

    #[test]
    fn fully_reachable_code_is_unchanged() {
        let mut e = Emitter::default();
        let skip = e.new_label();
        e.jump_if_imm(JmpOp::Jne, Reg::R1, 0, skip);
        e.push(Insn::mov64_imm(Reg::R0, 1));
        e.bind(skip);
        e.push(Insn::exit());
        let insns = e.finish().unwrap().insns;
        assert_eq!(insns.len(), 3);
        assert_eq!(insns[0].off, 1);
    }
}
