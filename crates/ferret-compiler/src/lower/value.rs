//! Where values live while a program runs: immediates, temporary registers,
//! stack slots, and memory (stack or per-CPU scratch) for strings and
//! tuples. Temporaries that find no free register go to the stack, so
//! expressions of any depth compile.

use ferret_bpf::{AluOp, Insn, Reg, Size};

use super::{Lowerer, STACK_LIMIT};
use crate::types::{Ty, align8};

/// Which memory a [`Place`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    /// Relative to the frame pointer (negative offsets).
    Stack,
    /// Relative to r9, the per-CPU scratch buffer.
    Scratch,
}

/// A location in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    pub base: Base,
    pub off: i32,
}

impl Place {
    pub fn at(self, delta: u32) -> Place {
        Place {
            base: self.base,
            off: self.off + delta as i32,
        }
    }

    pub fn reg(self) -> Reg {
        match self.base {
            Base::Stack => Reg::FP,
            Base::Scratch => Reg::R9,
        }
    }

    pub fn off16(self) -> i16 {
        // Offsets are bounded by STACK_LIMIT and the scratch size limit.
        self.off as i16
    }
}

/// A value's current home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Imm(i64),
    /// A temporary register owned by the value.
    Reg(Reg),
    /// An 8-byte stack slot owned by the value (a spilled temporary).
    Slot(Place),
    /// Memory holding a string, tuple, or other composite.
    Mem(Place),
}

/// A value and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TVal {
    pub val: Val,
    pub ty: Ty,
    /// The bytes of a string literal, for comparisons against constants.
    pub literal: Option<Vec<u8>>,
    /// An address marked by `uptr()` (true) or `kptr()` (false): which
    /// helpers read through it.
    pub user: Option<bool>,
}

impl TVal {
    pub fn new(val: Val, ty: Ty) -> Self {
        Self {
            val,
            ty,
            literal: None,
            user: None,
        }
    }

    pub fn int(v: i64) -> Self {
        Self::new(Val::Imm(v), Ty::I64)
    }
}

/// Scratch memory is addressed with 16-bit offsets.
const SCRATCH_LIMIT: u32 = 32 * 1024;

impl Lowerer<'_, '_> {
    /// A fresh location for an 8-byte scalar: a free register, else a stack slot.
    pub fn alloc_scalar(&mut self) -> Val {
        match self.free_regs.pop() {
            Some(r) => Val::Reg(r),
            None => Val::Slot(self.alloc_mem(8, false)),
        }
    }

    /// Returns a value's register to the pool. Memory is not reused within a
    /// program: it is bounded by the program's size.
    pub fn release(&mut self, v: TVal) {
        if let Val::Reg(r) = v.val
            && !self.free_regs.contains(&r)
        {
            self.free_regs.push(r);
        }
    }

    /// Memory for `size` bytes (rounded up to 8), on the stack while it has
    /// room, else in per-CPU scratch memory. Zeroed when `zero`.
    pub fn alloc_mem(&mut self, size: u32, zero: bool) -> Place {
        let size = align8(size.max(8));
        let place = if size <= 128 && self.stack_used + size as i32 <= self.stack_budget {
            self.stack_used += size as i32;
            Place {
                base: Base::Stack,
                off: -self.stack_used,
            }
        } else {
            let off = self.scratch_used;
            self.scratch_used += size;
            if self.scratch_used > SCRATCH_LIMIT {
                // Reported by finish() through the oversized stack check.
                self.stack_used = STACK_LIMIT + 1;
            }
            Place {
                base: Base::Scratch,
                off: off as i32,
            }
        };
        if zero {
            self.zero_mem(place, size);
        }
        place
    }

    pub fn zero_mem(&mut self, place: Place, size: u32) {
        for i in (0..align8(size)).step_by(8) {
            let p = place.at(i);
            self.e
                .push(Insn::store_imm(Size::DW, p.reg(), p.off16(), 0));
        }
    }

    /// `reg = &place`
    pub fn addr_of(&mut self, place: Place, reg: Reg) {
        self.e.push(Insn::mov64_reg(reg, place.reg()));
        if place.off != 0 {
            self.e.push(Insn::alu64_imm(AluOp::Add, reg, place.off));
        }
    }

    /// Loads a scalar value into `reg` (one of r0..r5).
    pub fn load_reg(&mut self, v: &TVal, reg: Reg) {
        match &v.val {
            Val::Imm(i) => self.e.mov_imm(reg, *i),
            Val::Reg(r) => {
                if *r != reg {
                    self.e.push(Insn::mov64_reg(reg, *r));
                }
            }
            Val::Slot(p) => self.e.push(Insn::load(Size::DW, reg, p.reg(), p.off16())),
            // A composite used as a scalar: its address.
            Val::Mem(p) => self.addr_of(*p, reg),
        }
    }

    /// Moves `reg` into a fresh temporary.
    pub fn temp_from(&mut self, reg: Reg, ty: Ty) -> TVal {
        let val = self.alloc_scalar();
        match &val {
            Val::Reg(r) => self.e.push(Insn::mov64_reg(*r, reg)),
            Val::Slot(p) => self.e.push(Insn::store(Size::DW, p.reg(), p.off16(), reg)),
            _ => {}
        }
        TVal::new(val, ty)
    }

    /// Makes sure the value is in a temporary it owns, so it can be changed
    /// in place.
    pub fn owned(&mut self, v: TVal) -> TVal {
        match v.val {
            Val::Reg(_) | Val::Slot(_) => v,
            _ => {
                self.load_reg(&v, Reg::R0);
                let ty = v.ty.clone();
                self.release(v);
                self.temp_from(Reg::R0, ty)
            }
        }
    }

    /// Writes r0 back to an owned temporary.
    pub fn store_back(&mut self, v: &TVal, reg: Reg) {
        match &v.val {
            Val::Reg(r) if *r != reg => self.e.push(Insn::mov64_reg(*r, reg)),
            Val::Slot(p) => self.e.push(Insn::store(Size::DW, p.reg(), p.off16(), reg)),
            _ => {}
        }
    }

    /// Copies `size` bytes (a multiple of 8) between memory places.
    pub fn copy_mem(&mut self, dst: Place, src: Place, size: u32) {
        for i in (0..align8(size)).step_by(8) {
            let (s, d) = (src.at(i), dst.at(i));
            self.e
                .push(Insn::load(Size::DW, Reg::R0, s.reg(), s.off16()));
            self.e
                .push(Insn::store(Size::DW, d.reg(), d.off16(), Reg::R0));
        }
    }

    /// Copies `size` bytes from the memory `src_reg` points to (a map value)
    /// into `dst`.
    pub fn copy_from_ptr(&mut self, dst: Place, src_reg: Reg, size: u32) {
        for i in (0..align8(size)).step_by(8) {
            let d = dst.at(i);
            self.e
                .push(Insn::load(Size::DW, Reg::R0, src_reg, i as i16));
            self.e
                .push(Insn::store(Size::DW, d.reg(), d.off16(), Reg::R0));
        }
    }

    /// Writes `v` into memory at `dst`, laid out as `ty` (which `v.ty`
    /// unifies with): integers widen to 8 bytes, strings are truncated or
    /// zero-padded to `ty`'s capacity, tuples element by element.
    pub fn write_as(&mut self, dst: Place, v: &TVal, ty: &Ty) {
        match (&v.ty, ty) {
            (Ty::Str { cap: have }, Ty::Str { cap: want }) => {
                let Val::Mem(src) = v.val else {
                    return;
                };
                let n = (*have).min(*want);
                self.copy_mem(dst, src, n);
                if want > have {
                    self.zero_mem(dst.at(align8(n)), want - align8(n));
                } else if have > want {
                    let last = dst.at(want - 1);
                    self.e
                        .push(Insn::store_imm(Size::B, last.reg(), last.off16(), 0));
                }
            }
            (Ty::Record(have), Ty::Record(want)) if have != want => {
                // Field by field, matched by name.
                let Val::Mem(src) = v.val else {
                    return;
                };
                let (src_offs, _) = crate::types::record_layout(have);
                let (dst_offs, _) = crate::types::record_layout(want);
                for (j, (name, w)) in want.iter().enumerate() {
                    let Some(i) = have.iter().position(|(n, _)| n == name) else {
                        continue;
                    };
                    let h = &have[i].1;
                    let at = src.at(src_offs[i]);
                    let elem = if h.is_scalar() {
                        TVal::new(Val::Slot(at), h.clone())
                    } else {
                        TVal::new(Val::Mem(at), h.clone())
                    };
                    self.write_as(dst.at(dst_offs[j]), &elem, w);
                }
            }
            (Ty::Buffer { cap: have }, Ty::Buffer { cap: want }) => {
                let Val::Mem(src) = v.val else {
                    return;
                };
                // The length word, then the bytes that fit.
                let n = 8 + align8((*have).min(*want));
                self.copy_mem(dst, src, n);
                if want > have {
                    self.zero_mem(dst.at(n), 8 + align8(*want) - n);
                }
            }
            (have, want) if !have.is_scalar() && have == want => {
                let Val::Mem(src) = v.val else {
                    return;
                };
                self.copy_mem(dst, src, have.size());
            }
            (Ty::Tuple(have), Ty::Tuple(want)) => {
                let Val::Mem(src) = v.val else {
                    return;
                };
                let (src_offs, _) = crate::types::tuple_layout(have);
                let (dst_offs, _) = crate::types::tuple_layout(want);
                for (i, (h, w)) in have.iter().zip(want).enumerate() {
                    let elem = if h.is_scalar() {
                        let p = src.at(src_offs[i]);
                        TVal::new(Val::Slot(p), h.clone())
                    } else {
                        TVal::new(Val::Mem(src.at(src_offs[i])), h.clone())
                    };
                    self.write_as(dst.at(dst_offs[i]), &elem, w);
                }
            }
            _ => {
                self.load_reg(v, Reg::R0);
                self.e
                    .push(Insn::store(Size::DW, dst.reg(), dst.off16(), Reg::R0));
            }
        }
    }

    /// Reads a value of type `ty` stored at `src` into a fresh temporary.
    pub fn read_place(&mut self, src: Place, ty: &Ty) -> TVal {
        if ty.is_scalar() {
            self.e
                .push(Insn::load(Size::DW, Reg::R0, src.reg(), src.off16()));
            self.temp_from(Reg::R0, ty.clone())
        } else {
            TVal::new(Val::Mem(src), ty.clone())
        }
    }
}
