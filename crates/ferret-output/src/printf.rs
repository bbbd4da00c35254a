//! bpftrace's `printf` format strings: parsing and formatting.
//!
//! A conversion is `%` followed, in this fixed order, by the optional flags
//! `-`, `+`, ` `, `#`, `0`, an optional width (digits or `*`), an optional
//! `.precision` (digits or `*`), any run of the length letters `hlLjzt`, and
//! a specifier: one of `diouxXeEfFGaAcspn%`, or `gr`, `g`, `rh`, `rx`, `r`.
//! A `%` that does not start such a sequence is ordinary text (bpftrace
//! prints `%q` literally). `%%` (with anything between) prints `%`.
//!
//! Formatting follows bpftrace's stream-based rules (see [`crate::stream`]):
//! * precision is accepted but ignored, also for `%s`;
//! * the space flag is ignored;
//! * `0` pads with zeros on whichever side the padding goes (`%-05d` of 42
//!   is `42000`, `%05d` of -42 is `00-42`);
//! * `d i` cast to `int` unless a length is given (`hh` → `char`, `h` →
//!   `short`, `l ll j z t` → 64 bits), `u o x X` likewise to `unsigned`
//!   (so `%x` of -1 is `ffffffff`, `%lx` is `ffffffffffffffff`); any other
//!   length spelling (`L`, `hl`, …) counts as none;
//! * `%c` writes the low byte; `%p` is `0x`-hex of all 64 bits (`0` for 0);
//! * `%s` writes any value as the text output does (width applies to its
//!   first piece only, e.g. the `(` of a tuple);
//! * `%r`, `%rx`, `%rh` write buffers (other values as `%s`);
//! * a value that is not a number under an integer conversion prints
//!   `!{invalid integer conversion: <value>}`.

use std::fmt;

use crate::stream::{Base, MAX_WIDTH, Stream, hex_buffer};
use crate::value::Value;

/// Length modifier, as bpftrace distinguishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Length {
    None,
    Hh,
    H,
    L,
    Ll,
    J,
    Z,
    T,
    /// Any other run of `hlLjzt` letters (`L`, `hl`, `lll`); treated as
    /// [`Length::None`].
    Other(String),
}

/// The conversion specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `d` or `i`.
    Signed,
    /// `u`.
    Unsigned,
    /// `o`.
    Octal,
    /// `x`.
    Hex,
    /// `X`.
    HexUpper,
    /// `c`.
    Char,
    /// `s`.
    Str,
    /// `p`.
    Pointer,
    /// `r`: buffer, printable bytes kept, others `\xNN`.
    Buf,
    /// `rx`: buffer, every byte `\xNN`.
    BufHex,
    /// `rh`: buffer, every byte `NN`, space separated.
    BufHexSpaced,
    /// `gr`: GFP flags.
    Gfp,
}

impl Spec {
    /// Whether the argument must be an integer (or bool, or pointer).
    pub fn wants_integer(self) -> bool {
        matches!(
            self,
            Spec::Signed
                | Spec::Unsigned
                | Spec::Octal
                | Spec::Hex
                | Spec::HexUpper
                | Spec::Char
                | Spec::Pointer
                | Spec::Gfp
        )
    }

    /// Whether the argument must be a `buf()`.
    pub fn wants_buffer(self) -> bool {
        matches!(self, Spec::Buf | Spec::BufHex | Spec::BufHexSpaced)
    }
}

/// Flags of one conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `-`
    pub left: bool,
    /// `+`
    pub plus: bool,
    /// ` ` (accepted, no effect)
    pub space: bool,
    /// `#`
    pub alt: bool,
    /// `0`
    pub zero: bool,
}

/// One `%…` conversion that consumes an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// Byte offset of the `%` in the format string.
    pub offset: usize,
    pub flags: Flags,
    /// Field width; `None` when absent or `*` (which bpftrace ignores and
    /// which consumes no argument).
    pub width: Option<usize>,
    /// Precision; parsed but without effect on any supported conversion.
    pub precision: Option<usize>,
    pub length: Length,
    pub spec: Spec,
}

/// A piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Vec<u8>),
    Conversion(Conversion),
}

/// A conversion bpftrace recognises but refuses (`%f`, `%e`, `%g`, `%n`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// Byte offset of the offending `%`.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormatError {}

/// What follows a `%` when it forms a conversion: the parsed conversion (or
/// `None` for a `%%`-style escape) and the length of the whole sequence.
enum Matched {
    Escape(usize),
    Conv(Conversion, usize),
    Refused(String),
}

fn parse_number(text: &[u8]) -> usize {
    // Saturate rather than fail; the value is capped when used anyway.
    text.iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    })
}

/// Matches one conversion at `fmt[at] == b'%'`.
fn match_at(fmt: &[u8], at: usize) -> Option<Matched> {
    let mut i = at + 1;
    let peek = |i: usize| fmt.get(i).copied();
    let mut flags = Flags::default();
    for (ch, slot) in [
        (b'-', &mut flags.left),
        (b'+', &mut flags.plus),
        (b' ', &mut flags.space),
        (b'#', &mut flags.alt),
        (b'0', &mut flags.zero),
    ] {
        if peek(i) == Some(ch) {
            *slot = true;
            i += 1;
        }
    }
    let digits_from = |i: usize| {
        let n = fmt[i.min(fmt.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        (
            n,
            parse_number(&fmt[i.min(fmt.len())..i.min(fmt.len()) + n]),
        )
    };
    let mut width = None;
    if peek(i) == Some(b'*') {
        i += 1;
    } else {
        let (n, v) = digits_from(i);
        if n > 0 {
            width = Some(v);
            i += n;
        }
    }
    let mut precision = None;
    if peek(i) == Some(b'.') {
        if peek(i + 1) == Some(b'*') {
            i += 2;
        } else {
            let (n, v) = digits_from(i + 1);
            if n > 0 {
                precision = Some(v);
                i += 1 + n;
            }
        }
    }
    let len_start = i;
    while matches!(peek(i), Some(b'h' | b'l' | b'L' | b'j' | b'z' | b't')) {
        i += 1;
    }
    let length = match &fmt[len_start..i] {
        b"" => Length::None,
        b"hh" => Length::Hh,
        b"h" => Length::H,
        b"l" => Length::L,
        b"ll" => Length::Ll,
        b"j" => Length::J,
        b"z" => Length::Z,
        b"t" => Length::T,
        other => Length::Other(String::from_utf8_lossy(other).into_owned()),
    };
    let c = peek(i)?;
    let next = peek(i + 1);
    let (spec, used) = match c {
        b'%' => return Some(Matched::Escape(i + 1 - at)),
        b'd' | b'i' => (Spec::Signed, 1),
        b'u' => (Spec::Unsigned, 1),
        b'o' => (Spec::Octal, 1),
        b'x' => (Spec::Hex, 1),
        b'X' => (Spec::HexUpper, 1),
        b'c' => (Spec::Char, 1),
        b's' => (Spec::Str, 1),
        b'p' => (Spec::Pointer, 1),
        b'e' | b'E' | b'f' | b'F' | b'G' | b'a' | b'A' | b'n' => {
            return Some(Matched::Refused(char::from(c).to_string()));
        }
        b'g' if next == Some(b'r') => (Spec::Gfp, 2),
        b'g' => return Some(Matched::Refused("g".to_string())),
        b'r' if next == Some(b'h') => (Spec::BufHexSpaced, 2),
        b'r' if next == Some(b'x') => (Spec::BufHex, 2),
        b'r' => (Spec::Buf, 1),
        _ => return None,
    };
    let conv = Conversion {
        offset: at,
        flags,
        width,
        precision,
        length,
        spec,
    };
    Some(Matched::Conv(conv, i + used - at))
}

/// Splits a format string into literal text and conversions. Fails only on
/// conversions bpftrace rejects (`unsupported format specifier: f`).
pub fn parse(fmt: &[u8]) -> Result<Vec<Piece>, FormatError> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' {
            literal.push(fmt[i]);
            i += 1;
            continue;
        }
        match match_at(fmt, i) {
            None => {
                literal.push(b'%');
                i += 1;
            }
            Some(Matched::Escape(n)) => {
                literal.push(b'%');
                i += n;
            }
            Some(Matched::Refused(spec)) => {
                return Err(FormatError {
                    offset: i,
                    message: format!("unsupported format specifier: {spec}"),
                });
            }
            Some(Matched::Conv(conv, n)) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Conversion(conv));
                i += n;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// Number of arguments the format string consumes.
pub fn arg_count(pieces: &[Piece]) -> usize {
    pieces
        .iter()
        .filter(|p| matches!(p, Piece::Conversion(_)))
        .count()
}

/// Integer view of a value, as bpftrace's numeric conversions see it.
fn as_bits(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => Some(*i as u64),
        Value::UInt(u) => Some(*u),
        Value::Bool(b) => Some(u64::from(*b)),
        Value::Symbolic { value, .. } => Some(*value),
        _ => None,
    }
}

fn signed_cast(bits: u64, length: &Length) -> i64 {
    match length {
        Length::Hh => i64::from(bits as u8 as i8),
        Length::H => i64::from(bits as u16 as i16),
        Length::L | Length::Ll | Length::J | Length::Z | Length::T => bits as i64,
        Length::None | Length::Other(_) => i64::from(bits as u32 as i32),
    }
}

fn unsigned_cast(bits: u64, length: &Length) -> u64 {
    match length {
        Length::Hh => u64::from(bits as u8),
        Length::H => u64::from(bits as u16),
        Length::L | Length::Ll | Length::J | Length::Z | Length::T => bits,
        Length::None | Length::Other(_) => u64::from(bits as u32),
    }
}

/// One conversion applied to one argument.
pub fn format_one(conv: &Conversion, arg: &Value) -> Vec<u8> {
    let mut s = Stream {
        width: conv.width.unwrap_or(0).min(MAX_WIDTH),
        fill: if conv.flags.zero { b'0' } else { b' ' },
        left: conv.flags.left,
        showpos: conv.flags.plus,
        showbase: conv.flags.alt,
        ..Stream::default()
    };
    match conv.spec {
        Spec::Octal => s.base = Base::Oct,
        Spec::Hex => s.base = Base::Hex,
        Spec::HexUpper => {
            s.base = Base::Hex;
            s.uppercase = true;
        }
        _ => {}
    }
    if conv.spec.wants_integer() {
        let Some(bits) = as_bits(arg) else {
            let mut msg = b"!{invalid integer conversion: ".to_vec();
            msg.extend(crate::text::format_value_bytes(arg));
            msg.push(b'}');
            return msg;
        };
        match conv.spec {
            Spec::Signed => s.put_i64(signed_cast(bits, &conv.length)),
            Spec::Char => s.put(&[bits as u8]),
            Spec::Pointer => s.put_ptr(bits),
            Spec::Gfp => s.put(crate::gfp::format(bits).as_bytes()),
            _ => s.put_u64(unsigned_cast(bits, &conv.length)),
        }
        return s.out;
    }
    match (conv.spec, arg) {
        (Spec::Buf, Value::Buffer(b)) => s.put(&hex_buffer(b, true, true)),
        (Spec::BufHex, Value::Buffer(b)) => s.put(&hex_buffer(b, false, true)),
        (Spec::BufHexSpaced, Value::Buffer(b)) => s.put(&hex_buffer(b, false, false)),
        _ => s.put_value(arg),
    }
    s.out
}

/// Formats `args` into the parsed format string. As in bpftrace, when
/// arguments run short, output stops before the text preceding the first
/// conversion without one, and only the final text follows.
pub fn format(pieces: &[Piece], args: &[Value]) -> Vec<u8> {
    // fragments[i] precedes conversion i; the last one trails.
    let mut fragments: Vec<Vec<u8>> = vec![Vec::new()];
    let mut convs = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => {
                if let Some(f) = fragments.last_mut() {
                    f.extend_from_slice(text);
                }
            }
            Piece::Conversion(conv) => {
                convs.push(conv);
                fragments.push(Vec::new());
            }
        }
    }
    let mut out = Vec::new();
    for ((conv, fragment), arg) in convs.iter().zip(&fragments).zip(args) {
        out.extend_from_slice(fragment);
        out.extend(format_one(conv, arg));
    }
    if let Some(last) = fragments.last() {
        out.extend_from_slice(last);
    }
    out
}
