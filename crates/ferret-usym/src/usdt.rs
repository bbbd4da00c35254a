//! USDT argument specs, the assembler operands a `.note.stapsdt` note
//! records for each argument (`-4@%eax`, `8@-8(%rbp)`, `4@$5`).
//!
//! Parsed by hand: the grammar is a few operand forms of AT&T syntax, and no
//! crate reads them apart from libbpf's C code.

use std::fmt;

/// Where one argument lives when the probe fires, and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtArg {
    /// Bytes of the value: 1, 2, 4 or 8.
    pub size: u8,
    /// Sign-extended to 64 bits (a negative size in the spec).
    pub signed: bool,
    pub location: ArgLocation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgLocation {
    /// `$5`: a constant.
    Constant(i64),
    /// `%eax`: a register, named by its 64-bit name (`rax`).
    Register(&'static str),
    /// `-8(%rbp)`, `(%rax,%rdx,8)`: memory at `base + index * scale + offset`.
    Memory {
        base: &'static str,
        index: Option<(&'static str, u8)>,
        offset: i64,
    },
}

/// A spec ferret cannot read, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub spec: String,
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "USDT argument '{}': {}", self.spec, self.reason)
    }
}

/// The 64-bit name of an x86-64 register written with any width (`eax`,
/// `ax`, `al` → `rax`); None for unknown names and the high bytes (`ah`),
/// which are not at the bottom of any 64-bit register.
pub fn x86_64_register(name: &str) -> Option<&'static str> {
    const FAMILIES: &[(&str, &[&str])] = &[
        ("rax", &["rax", "eax", "ax", "al"]),
        ("rbx", &["rbx", "ebx", "bx", "bl"]),
        ("rcx", &["rcx", "ecx", "cx", "cl"]),
        ("rdx", &["rdx", "edx", "dx", "dl"]),
        ("rsi", &["rsi", "esi", "si", "sil"]),
        ("rdi", &["rdi", "edi", "di", "dil"]),
        ("rbp", &["rbp", "ebp", "bp", "bpl"]),
        ("rsp", &["rsp", "esp", "sp", "spl"]),
        ("rip", &["rip"]),
        ("r8", &["r8", "r8d", "r8w", "r8b"]),
        ("r9", &["r9", "r9d", "r9w", "r9b"]),
        ("r10", &["r10", "r10d", "r10w", "r10b"]),
        ("r11", &["r11", "r11d", "r11w", "r11b"]),
        ("r12", &["r12", "r12d", "r12w", "r12b"]),
        ("r13", &["r13", "r13d", "r13w", "r13b"]),
        ("r14", &["r14", "r14d", "r14w", "r14b"]),
        ("r15", &["r15", "r15d", "r15w", "r15b"]),
    ];
    FAMILIES
        .iter()
        .find(|(_, names)| names.contains(&name))
        .map(|(full, _)| *full)
}

/// Parses a note's whole argument string: specs separated by spaces.
pub fn parse_args(text: &str) -> Result<Vec<UsdtArg>, SpecError> {
    text.split_ascii_whitespace().map(parse_arg).collect()
}

/// Parses one spec, `SIZE@OPERAND`.
pub fn parse_arg(spec: &str) -> Result<UsdtArg, SpecError> {
    let err = |reason: &str| SpecError {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let Some((size, operand)) = spec.split_once('@') else {
        return Err(err("no size (expected SIZE@OPERAND)"));
    };
    let size: i32 = size.parse().map_err(|_| err("the size is not a number"))?;
    let signed = size < 0;
    let size = size.unsigned_abs();
    if ![1, 2, 4, 8].contains(&size) {
        return Err(err("the size must be 1, 2, 4 or 8 bytes"));
    }
    let register = |r: &str| -> Result<&'static str, SpecError> {
        let name = r
            .strip_prefix('%')
            .ok_or_else(|| err("expected a register (%name)"))?;
        x86_64_register(name).ok_or_else(|| err(&format!("unsupported register %{name}")))
    };
    let location = if let Some(imm) = operand.strip_prefix('$') {
        ArgLocation::Constant(parse_int(imm).ok_or_else(|| err("bad constant"))?)
    } else if operand.starts_with('%') {
        ArgLocation::Register(register(operand)?)
    } else if let Some(open) = operand.find('(') {
        let Some(inner) = operand[open + 1..].strip_suffix(')') else {
            return Err(err("unbalanced parentheses"));
        };
        let disp = &operand[..open];
        let offset = if disp.is_empty() {
            0
        } else {
            parse_int(disp).ok_or_else(|| {
                err("symbolic displacements (such as RIP-relative globals) are not supported")
            })?
        };
        let mut parts = inner.split(',').map(str::trim);
        let base = register(parts.next().unwrap_or_default())?;
        let index = match (parts.next(), parts.next()) {
            (None, _) => None,
            (Some(i), scale) => {
                let scale = match scale {
                    None => 1,
                    Some(s) => s
                        .parse::<u8>()
                        .ok()
                        .filter(|s| [1, 2, 4, 8].contains(s))
                        .ok_or_else(|| err("the scale must be 1, 2, 4 or 8"))?,
                };
                Some((register(i)?, scale))
            }
        };
        if parts.next().is_some() {
            return Err(err("too many parts in the memory operand"));
        }
        if base == "rip" {
            return Err(err("RIP-relative operands are not supported"));
        }
        ArgLocation::Memory {
            base,
            index,
            offset,
        }
    } else {
        return Err(err("unknown operand form"));
    };
    Ok(UsdtArg {
        size: size as u8,
        signed,
        location,
    })
}

/// A decimal or `0x` hex integer, possibly negative.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()? as i64,
        None => digits.parse::<u64>().ok()? as i64,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(size: u8, signed: bool, location: ArgLocation) -> UsdtArg {
        UsdtArg {
            size,
            signed,
            location,
        }
    }

    #[test]
    fn every_operand_form() {
        assert_eq!(
            parse_args("-4@%eax 8@-8(%rbp) 4@$5 -2@$-3 8@%r12 1@%sil").unwrap(),
            vec![
                arg(4, true, ArgLocation::Register("rax")),
                arg(
                    8,
                    false,
                    ArgLocation::Memory {
                        base: "rbp",
                        index: None,
                        offset: -8
                    }
                ),
                arg(4, false, ArgLocation::Constant(5)),
                arg(2, true, ArgLocation::Constant(-3)),
                arg(8, false, ArgLocation::Register("r12")),
                arg(1, false, ArgLocation::Register("rsi")),
            ]
        );
        assert_eq!(
            parse_arg("-8@0x10(%rdi,%rax,8)").unwrap(),
            arg(
                8,
                true,
                ArgLocation::Memory {
                    base: "rdi",
                    index: Some(("rax", 8)),
                    offset: 16
                }
            )
        );
        assert_eq!(
            parse_arg("8@(%rsp)").unwrap().location,
            ArgLocation::Memory {
                base: "rsp",
                index: None,
                offset: 0
            }
        );
        assert_eq!(parse_args("").unwrap(), vec![]);
    }

    #[test]
    fn unsupported_specs_say_why() {
        let why = |s: &str| parse_arg(s).unwrap_err().reason;
        assert_eq!(why("%eax"), "no size (expected SIZE@OPERAND)");
        assert_eq!(why("3@%eax"), "the size must be 1, 2, 4 or 8 bytes");
        assert_eq!(why("1@%ah"), "unsupported register %ah");
        assert_eq!(
            why("4@counter(%rip)"),
            "symbolic displacements (such as RIP-relative globals) are not supported"
        );
        assert_eq!(why("4@8(%rip)"), "RIP-relative operands are not supported");
        assert_eq!(why("4@(%rax,%rbx,3)"), "the scale must be 1, 2, 4 or 8");
        assert_eq!(
            parse_arg("x@%eax").unwrap_err().to_string(),
            "USDT argument 'x@%eax': the size is not a number"
        );
    }
}
