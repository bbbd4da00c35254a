//! Human-readable eBPF assembly, for `--dump`.
//!
//! The notation follows the kernel verifier's and bpftool's "xlated" dumps
//! (`r0 += r1`, `*(u32 *)(r10 -4) = r0`, `if r0 == 0x0 goto pc+3`), so the
//! output lines up with verifier logs. Every input prints something: opcodes
//! this module does not know come out as `.insn` with their raw bytes.

use std::fmt::Write as _;

use crate::Insn;
use crate::insn::{
    BPF_ALU, BPF_ALU64, BPF_ATOMIC, BPF_CALL, BPF_EXIT, BPF_JA, BPF_JMP, BPF_JMP32, BPF_LD,
    BPF_LDX, BPF_MEM, BPF_PSEUDO_MAP_FD, BPF_ST, BPF_STX, BPF_X, helper,
};

// Encodings only the disassembler needs.
const BPF_ABS: u8 = 0x20;
const BPF_IND: u8 = 0x40;
const BPF_MEMSX: u8 = 0x80;
const BPF_END: u8 = 0xd0;
const BPF_JCOND: u8 = 0xe0;
const BPF_FETCH: i32 = 0x01;
const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;
const BPF_LOAD_ACQ: i32 = 0x100;
const BPF_STORE_REL: i32 = 0x110;
const BPF_PSEUDO_MAP_VALUE: u8 = 2;
const BPF_PSEUDO_BTF_ID: u8 = 3;
const BPF_PSEUDO_FUNC: u8 = 4;
const BPF_PSEUDO_MAP_IDX: u8 = 5;
const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;
const BPF_PSEUDO_CALL: u8 = 1;
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

/// One instruction per line, numbered by slot: `   0: (bf) r6 = r1`.
pub fn disassemble(insns: &[Insn]) -> String {
    disassemble_with_maps(insns, &[])
}

/// Like [`disassemble`], but an `ld_imm64` at an index listed in
/// `map_names` prints as `r1 = map[name]`.
pub fn disassemble_with_maps(insns: &[Insn], map_names: &[(usize, String)]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = &insns[i];
        let (text, slots) = if insn.is_ld_imm64() {
            match insns.get(i + 1) {
                Some(hi) => {
                    let name = map_names
                        .iter()
                        .find(|(at, _)| *at == i)
                        .map(|(_, n)| n.as_str());
                    (ld_imm64(insn, hi, name), 2)
                }
                None => (raw(insn), 1),
            }
        } else {
            (one(insn), 1)
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{i:4}: ({:02x}) {text}", insn.code);
        i += slots;
    }
    out
}

/// Text for a single-slot instruction (everything but `ld_imm64`).
fn one(insn: &Insn) -> String {
    let text = match insn.class() {
        BPF_ALU | BPF_ALU64 => alu(insn),
        BPF_LDX => ldx(insn),
        BPF_ST | BPF_STX => store(insn),
        BPF_JMP | BPF_JMP32 => jmp(insn),
        BPF_LD => ld_legacy(insn),
        _ => None,
    };
    text.unwrap_or_else(|| raw(insn))
}

fn raw(insn: &Insn) -> String {
    format!(".insn 0x{:016x}", u64::from_be_bytes(insn.encode()))
}

fn reg(n: u8) -> Option<String> {
    (n <= 10).then(|| format!("r{n}"))
}

/// `r`n or `w`n depending on the operation width.
fn wreg(n: u8, wide: bool) -> Option<String> {
    (n <= 10).then(|| format!("{}{n}", if wide { 'r' } else { 'w' }))
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x00 => "u32",
        0x08 => "u16",
        0x10 => "u8",
        _ => "u64",
    }
}

/// `(r10 -4)`: the kernel prints the offset with an explicit sign.
fn mem(base: u8, off: i16) -> Option<String> {
    Some(format!("({} {off:+})", reg(base)?))
}

fn alu(insn: &Insn) -> Option<String> {
    let wide = insn.class() == BPF_ALU64;
    let op = insn.code & 0xf0;
    let dst = wreg(insn.dst, wide)?;
    let from_reg = insn.code & BPF_X != 0;
    let src = || -> Option<String> {
        if from_reg {
            wreg(insn.src, wide)
        } else {
            Some(insn.imm.to_string())
        }
    };
    Some(match op {
        0x80 => format!("{dst} = -{dst}"),
        BPF_END => {
            let bits = insn.imm;
            if !matches!(bits, 16 | 32 | 64) {
                return None;
            }
            let r = reg(insn.dst)?;
            if wide {
                format!("{r} = bswap{bits} {r}")
            } else {
                let order = if from_reg { "be" } else { "le" };
                format!("{r} = {order}{bits} {r}")
            }
        }
        0xb0 if from_reg && insn.off != 0 => {
            // movsx: sign-extend the low `off` bits of src.
            if !matches!(insn.off, 8 | 16 | 32) {
                return None;
            }
            format!("{dst} = (s{}){}", insn.off, wreg(insn.src, wide)?)
        }
        0xb0 => format!("{dst} = {}", src()?),
        _ => {
            let signed = insn.off == 1 && matches!(op, 0x30 | 0x90);
            let sym = match op {
                0x00 => "+=",
                0x10 => "-=",
                0x20 => "*=",
                0x30 if signed => "s/=",
                0x30 => "/=",
                0x40 => "|=",
                0x50 => "&=",
                0x60 => "<<=",
                0x70 => ">>=",
                0x90 if signed => "s%=",
                0x90 => "%=",
                0xa0 => "^=",
                0xc0 => "s>>=",
                _ => return None,
            };
            format!("{dst} {sym} {}", src()?)
        }
    })
}

fn ldx(insn: &Insn) -> Option<String> {
    let dst = reg(insn.dst)?;
    let at = mem(insn.src, insn.off)?;
    let size = size_name(insn.code);
    match insn.code & 0xe0 {
        BPF_MEM => Some(format!("{dst} = *({size} *){at}")),
        BPF_MEMSX if size != "u64" => {
            let s = size.replacen('u', "s", 1);
            Some(format!("{dst} = *({s} *){at}"))
        }
        _ => None,
    }
}

fn store(insn: &Insn) -> Option<String> {
    let size = size_name(insn.code);
    let at = mem(insn.dst, insn.off)?;
    match (insn.class(), insn.code & 0xe0) {
        (BPF_ST, BPF_MEM) => Some(format!("*({size} *){at} = {}", insn.imm)),
        (BPF_STX, BPF_MEM) => Some(format!("*({size} *){at} = {}", reg(insn.src)?)),
        (BPF_STX, BPF_ATOMIC) => atomic(insn, size, &at),
        _ => None,
    }
}

fn atomic(insn: &Insn, size: &str, at: &str) -> Option<String> {
    let wide = size == "u64";
    if !wide && size != "u32" && !matches!(insn.imm, BPF_LOAD_ACQ | BPF_STORE_REL) {
        return None;
    }
    let bits = if wide { "64" } else { "" };
    // The kernel names registers rN here whatever the width.
    let src = reg(insn.src)?;
    let op_name = |op: i32| match op {
        0x00 => Some(("+=", "add")),
        0x40 => Some(("|=", "or")),
        0x50 => Some(("&=", "and")),
        0xa0 => Some(("^=", "xor")),
        _ => None,
    };
    Some(match insn.imm {
        BPF_XCHG => format!("{src} = atomic{bits}_xchg(({size} *){at}, {src})"),
        BPF_CMPXCHG => {
            format!("r0 = atomic{bits}_cmpxchg(({size} *){at}, r0, {src})")
        }
        // Load-acquire reads through src into dst, unlike every other store.
        BPF_LOAD_ACQ => format!(
            "{} = load_acquire(({size} *){})",
            reg(insn.dst)?,
            mem(insn.src, insn.off)?
        ),
        BPF_STORE_REL => format!("store_release(({size} *){at}, {})", reg(insn.src)?),
        imm if imm & BPF_FETCH != 0 => {
            let (_, name) = op_name(imm & !BPF_FETCH)?;
            format!("{src} = atomic{bits}_fetch_{name}(({size} *){at}, {src})")
        }
        imm => {
            let (sym, _) = op_name(imm)?;
            format!("lock *({size} *){at} {sym} {src}")
        }
    })
}

fn jmp(insn: &Insn) -> Option<String> {
    let wide = insn.class() == BPF_JMP;
    let op = insn.code & 0xf0;
    Some(match op {
        BPF_JA if wide => format!("goto pc{:+}", insn.off),
        // The 32-bit form keeps its (longer) offset in imm.
        BPF_JA => format!("gotol pc{:+}", insn.imm),
        BPF_CALL if wide => call(insn),
        BPF_EXIT if wide => "exit".to_owned(),
        BPF_JCOND if wide => format!("may_goto pc{:+}", insn.off),
        _ => {
            let sym = match op {
                0x10 => "==",
                0x20 => ">",
                0x30 => ">=",
                0x40 => "&",
                0x50 => "!=",
                0x60 => "s>",
                0x70 => "s>=",
                0xa0 => "<",
                0xb0 => "<=",
                0xc0 => "s<",
                0xd0 => "s<=",
                _ => return None,
            };
            let dst = wreg(insn.dst, wide)?;
            let rhs = if insn.code & BPF_X != 0 {
                wreg(insn.src, wide)?
            } else {
                // Hex of the 32-bit pattern, as the kernel prints it.
                format!("{:#x}", insn.imm as u32)
            };
            format!("if {dst} {sym} {rhs} goto pc{:+}", insn.off)
        }
    })
}

fn call(insn: &Insn) -> String {
    match insn.src {
        BPF_PSEUDO_CALL => format!("call pc{:+}", insn.imm),
        BPF_PSEUDO_KFUNC_CALL => format!("call kernel-function#{}", insn.imm),
        _ => match helper::name(insn.imm) {
            Some(name) => format!("call bpf_{name}#{}", insn.imm),
            None => format!("call unknown#{}", insn.imm),
        },
    }
}

/// Legacy packet loads (`BPF_ABS`/`BPF_IND`); `ld_imm64` is handled apart.
fn ld_legacy(insn: &Insn) -> Option<String> {
    let size = size_name(insn.code);
    match insn.code & 0xe0 {
        BPF_ABS => Some(format!("r0 = *({size} *)skb[{}]", insn.imm)),
        BPF_IND => Some(format!(
            "r0 = *({size} *)skb[{} + {}]",
            reg(insn.src)?,
            insn.imm
        )),
        _ => None,
    }
}

fn ld_imm64(lo: &Insn, hi: &Insn, map_name: Option<&str>) -> String {
    let Some(dst) = reg(lo.dst) else {
        return raw(lo);
    };
    let value = u64::from(lo.imm as u32) | (u64::from(hi.imm as u32) << 32);
    let map = |imm: i32| match map_name {
        Some(name) => format!("map[{name}]"),
        None => format!("map[fd:{imm}]"),
    };
    match lo.src {
        BPF_PSEUDO_MAP_FD => format!("{dst} = {}", map(lo.imm)),
        BPF_PSEUDO_MAP_VALUE => format!("{dst} = {}+{}", map(lo.imm), hi.imm),
        BPF_PSEUDO_MAP_IDX => format!("{dst} = map[idx:{}]", lo.imm),
        BPF_PSEUDO_MAP_IDX_VALUE => format!("{dst} = map[idx:{}]+{}", lo.imm, hi.imm),
        BPF_PSEUDO_BTF_ID => format!("{dst} = btf_id[{}]", lo.imm),
        BPF_PSEUDO_FUNC => format!("{dst} = func pc{:+}", lo.imm),
        _ => format!("{dst} = {value:#x} ll"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::BPF_K;
    use crate::{AluOp, JmpOp, Reg, Size};

    /// Disassembles and strips the `   N: ` prefix of a single line.
    fn d(insns: &[Insn]) -> String {
        let text = disassemble(insns);
        let line = text.lines().next().unwrap_or_default();
        line.split_once(": ").map(|(_, t)| t.to_owned()).unwrap()
    }

    #[test]
    fn numbering_and_ld_imm64_slots() {
        let mut prog = vec![Insn::mov64_reg(Reg::R6, Reg::R1)];
        prog.extend(Insn::ld_imm64(Reg::R1, 0x1234));
        prog.push(Insn::call(helper::GET_CURRENT_PID_TGID));
        prog.push(Insn::exit());
        assert_eq!(
            disassemble(&prog),
            "   0: (bf) r6 = r1\n   1: (18) r1 = 0x1234 ll\n   3: (85) call bpf_get_current_pid_tgid#14\n   4: (95) exit\n"
        );
    }

    #[test]
    fn alu64() {
        assert_eq!(d(&[Insn::mov64_imm(Reg::R0, 1)]), "(b7) r0 = 1");
        assert_eq!(
            d(&[Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1)]),
            "(0f) r0 += r1"
        );
        assert_eq!(
            d(&[Insn::alu64_imm(AluOp::Add, Reg::R2, -8)]),
            "(07) r2 += -8"
        );
        assert_eq!(
            d(&[Insn::alu64_imm(AluOp::Arsh, Reg::R3, 4)]),
            "(c7) r3 s>>= 4"
        );
        assert_eq!(
            d(&[Insn::alu64_reg(AluOp::Xor, Reg::R3, Reg::R4)]),
            "(af) r3 ^= r4"
        );
        assert_eq!(d(&[Insn::neg64(Reg::R0)]), "(87) r0 = -r0");
        let mut sdiv = Insn::alu64_reg(AluOp::Div, Reg::R1, Reg::R2);
        sdiv.off = 1;
        assert_eq!(d(&[sdiv]), "(3f) r1 s/= r2");
        let mut movsx = Insn::mov64_reg(Reg::R1, Reg::R2);
        movsx.off = 8;
        assert_eq!(d(&[movsx]), "(bf) r1 = (s8)r2");
    }

    #[test]
    fn alu32_and_endian() {
        assert_eq!(
            d(&[Insn::alu32_reg(AluOp::Mov, Reg::R0, Reg::R1)]),
            "(bc) w0 = w1"
        );
        assert_eq!(
            d(&[Insn::alu32_imm(AluOp::Lsh, Reg::R0, 3)]),
            "(64) w0 <<= 3"
        );
        let neg32 = Insn::new(BPF_ALU | AluOp::Neg as u8, Reg::R2, Reg(0), 0, 0);
        assert_eq!(d(&[neg32]), "(84) w2 = -w2");
        let be16 = Insn::new(BPF_ALU | BPF_X | BPF_END, Reg::R0, Reg(0), 0, 16);
        assert_eq!(d(&[be16]), "(dc) r0 = be16 r0");
        let bswap = Insn::new(BPF_ALU64 | BPF_END, Reg::R0, Reg(0), 0, 64);
        assert_eq!(d(&[bswap]), "(d7) r0 = bswap64 r0");
    }

    #[test]
    fn loads_and_stores() {
        assert_eq!(
            d(&[Insn::load(Size::DW, Reg::R0, Reg::R1, 8)]),
            "(79) r0 = *(u64 *)(r1 +8)"
        );
        assert_eq!(
            d(&[Insn::load(Size::B, Reg::R3, Reg::R1, 0)]),
            "(71) r3 = *(u8 *)(r1 +0)"
        );
        assert_eq!(
            d(&[Insn::store(Size::W, Reg::FP, -4, Reg::R0)]),
            "(63) *(u32 *)(r10 -4) = r0"
        );
        assert_eq!(
            d(&[Insn::store_imm(Size::H, Reg::FP, -2, 7)]),
            "(6a) *(u16 *)(r10 -2) = 7"
        );
        let ldsx = Insn::new(BPF_LDX | BPF_MEMSX, Reg::R0, Reg::R1, 4, 0);
        assert_eq!(d(&[ldsx]), "(81) r0 = *(s32 *)(r1 +4)");
        let abs = Insn::new(BPF_LD | BPF_ABS | 0x10, Reg(0), Reg(0), 0, 12);
        assert_eq!(d(&[abs]), "(30) r0 = *(u8 *)skb[12]");
    }

    #[test]
    fn atomics() {
        assert_eq!(
            d(&[Insn::atomic_add(Size::DW, Reg::R0, 0, Reg::R1)]),
            "(db) lock *(u64 *)(r0 +0) += r1"
        );
        assert_eq!(
            d(&[Insn::atomic_add(Size::W, Reg::R0, 8, Reg::R1)]),
            "(c3) lock *(u32 *)(r0 +8) += r1"
        );
        let mut fetch = Insn::atomic_add(Size::DW, Reg::R0, 0, Reg::R1);
        fetch.imm = BPF_FETCH;
        assert_eq!(
            d(&[fetch]),
            "(db) r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)"
        );
        fetch.imm = BPF_CMPXCHG;
        assert_eq!(
            d(&[fetch]),
            "(db) r0 = atomic64_cmpxchg((u64 *)(r0 +0), r0, r1)"
        );
        let acq = Insn::new(
            BPF_STX | BPF_ATOMIC | 0x18,
            Reg::R0,
            Reg::R1,
            8,
            BPF_LOAD_ACQ,
        );
        assert_eq!(d(&[acq]), "(db) r0 = load_acquire((u64 *)(r1 +8))");
        fetch.imm = 0x77;
        assert!(d(&[fetch]).starts_with("(db) .insn 0x"));
    }

    #[test]
    fn jumps_calls_exit() {
        assert_eq!(
            d(&[Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 3)]),
            "(15) if r0 == 0x0 goto pc+3"
        );
        assert_eq!(
            d(&[Insn::jmp_reg(JmpOp::Jsgt, Reg::R1, Reg::R2, -5)]),
            "(6d) if r1 s> r2 goto pc-5"
        );
        assert_eq!(
            d(&[Insn::jmp_imm(JmpOp::Jne, Reg::R1, -1, 1)]),
            "(55) if r1 != 0xffffffff goto pc+1"
        );
        let j32 = Insn::new(BPF_JMP32 | BPF_K | JmpOp::Jlt as u8, Reg::R0, Reg(0), 2, 10);
        assert_eq!(d(&[j32]), "(a6) if w0 < 0xa goto pc+2");
        assert_eq!(d(&[Insn::ja(-1)]), "(05) goto pc-1");
        assert_eq!(
            d(&[Insn::call(helper::MAP_LOOKUP_ELEM)]),
            "(85) call bpf_map_lookup_elem#1"
        );
        assert_eq!(
            d(&[Insn::call(helper::GET_FUNC_RET)]),
            "(85) call bpf_get_func_ret#184"
        );
        assert_eq!(d(&[Insn::call(9999)]), "(85) call unknown#9999");
        let mut sub = Insn::call(4);
        sub.src = BPF_PSEUDO_CALL;
        assert_eq!(d(&[sub]), "(85) call pc+4");
        assert_eq!(d(&[Insn::exit()]), "(95) exit");
    }

    #[test]
    fn map_loads() {
        let prog = Insn::ld_map_fd(Reg::R1);
        assert_eq!(d(&prog), "(18) r1 = map[fd:0]");
        let names = [(0, "counts".to_owned())];
        assert_eq!(
            disassemble_with_maps(&prog, &names),
            "   0: (18) r1 = map[counts]\n"
        );
        let mut big = Insn::ld_imm64(Reg::R2, 0xdead_beef_0000_0001);
        assert_eq!(d(&big), "(18) r2 = 0xdeadbeef00000001 ll");
        big[0].src = BPF_PSEUDO_MAP_VALUE;
        big[0].imm = 5;
        big[1].imm = 16;
        assert_eq!(d(&big), "(18) r2 = map[fd:5]+16");
    }

    #[test]
    fn garbage_never_panics() {
        // A truncated ld_imm64, bad registers, and every opcode byte.
        let lone = Insn::ld_imm64(Reg::R1, 1)[0];
        assert!(d(&[lone]).starts_with("(18) .insn 0x18"));
        let bad_reg = Insn::new(BPF_ALU64 | BPF_X, Reg(12), Reg(15), 0, 0);
        assert!(d(&[bad_reg]).contains(".insn"));
        let weird_mem = Insn::new(BPF_STX | 0xa0, Reg::R1, Reg::R2, 0, 0);
        assert!(d(&[weird_mem]).contains(".insn"));
        for code in 0..=255u8 {
            for src in [0u8, 1, 2, 7, 15] {
                let i = Insn {
                    code,
                    dst: 3,
                    src,
                    off: 1,
                    imm: -1,
                };
                let text = disassemble(&[i, i]);
                assert!(text.starts_with(&format!("   0: ({code:02x}) ")));
            }
        }
        assert_eq!(disassemble(&[]), "");
    }
}
