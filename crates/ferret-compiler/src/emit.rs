//! An instruction buffer with forward labels and map relocations, resolved
//! into final jump offsets once a program is complete.

use ferret_bpf::{AluOp, Insn, JmpOp, Reg};

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
}

/// A finished program: instructions and (instruction index, object map
/// index) relocations.
pub type Assembled = (Vec<Insn>, Vec<(usize, usize)>);

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

    /// The instructions with every jump resolved, and the map relocations.
    pub fn finish(mut self) -> Result<Assembled, JumpTooFar> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].unwrap_or(self.insns.len());
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| JumpTooFar)?;
        }
        Ok((self.insns, self.map_relocs))
    }
}
