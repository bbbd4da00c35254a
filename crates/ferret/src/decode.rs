//! Bytes from the kernel (events, map keys and values) into the values the
//! formatters print, following the layouts the compiler chose.

use std::collections::BTreeMap;

use ferret_compiler::config::StackMode;
use ferret_compiler::types::tuple_layout;
use ferret_compiler::{MapInfo, MapKind, Options, Ty};
use ferret_kernel::KernelSymbols;
use ferret_output::{MapDump, MapEntry, MapValue, Value};

/// Turns stack ids and addresses into symbol names; kallsyms is read only
/// when the first stack or ksym needs it.
///
/// It also carries the config settings that change how values print:
/// `stack_mode`, and the trailer for strings `max_strlen` cut short.
pub struct Symbolizer {
    pub stacks: Option<ferret_kernel::RawMap>,
    pub ksyms: Option<KernelSymbols>,
    pub tried: bool,
    /// `strftime` formats, by [`Ty::Timestamp`]'s number.
    pub time_formats: Vec<Vec<u8>>,
    /// Wall-clock time of the boot (ns since the epoch), for `strftime`.
    pub boot_wall_ns: i128,
    /// Longest `strftime` result, as bpftrace's `max_strlen`.
    pub max_strlen: usize,
    /// `/etc/passwd`'s uid to name, read on first need.
    pub users: Option<Vec<(u64, String)>>,
    pub stack_mode: StackMode,
    /// A string `str()` read that filled its buffer: its length, the
    /// capacity of such strings, and what to append when printing it.
    pub truncated: Option<(usize, u32, String)>,
    /// Where cgroups are, for `cgroup_path`.
    pub cgroups: crate::cgroups::CgroupPaths,
    /// User-space stacks and symbols.
    pub user: crate::usyms::UserSymbols,
    /// bpftrace's `str_trunc_trailer`, also shown after a char array member
    /// with no NUL in it.
    pub trailer: String,
}

impl Symbolizer {
    pub fn new(stacks: Option<ferret_kernel::RawMap>) -> Self {
        Self {
            stacks,
            ksyms: None,
            tried: false,
            time_formats: Vec::new(),
            boot_wall_ns: crate::timefmt::boot_wall_ns(),
            max_strlen: 1024,
            users: None,
            stack_mode: StackMode::Bpftrace,
            truncated: None,
            cgroups: crate::cgroups::CgroupPaths::default(),
            user: Default::default(),
            trailer: "..".into(),
        }
    }

    /// Prints as the config in `opts` asks.
    pub fn configured(mut self, opts: &Options) -> Self {
        self.stack_mode = opts.stack_mode;
        self.max_strlen = opts.max_strlen as usize;
        self.trailer = opts.str_trunc_trailer.clone();
        self.truncated = (opts.max_strlen < 1024).then(|| {
            (
                opts.max_strlen as usize,
                ferret_compiler::types::align8(opts.str_read_len()),
                opts.str_trunc_trailer.clone(),
            )
        });
        self
    }

    /// The name of user `uid`, empty when unknown (as bpftrace).
    fn username(&mut self, uid: u64) -> String {
        let users = self.users.get_or_insert_with(|| {
            std::fs::read_to_string("/etc/passwd")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((id, name.to_string()))
                })
                .collect()
        });
        users
            .iter()
            .find(|(id, _)| *id == uid)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    }

    fn ksyms(&mut self) -> Option<&KernelSymbols> {
        if !self.tried {
            self.tried = true;
            self.ksyms = KernelSymbols::load().ok();
        }
        self.ksyms.as_ref()
    }

    fn symbol(&mut self, addr: u64, with_offset: bool) -> String {
        match self.ksyms().and_then(|k| k.resolve(addr)) {
            Some((name, off)) if with_offset => format!("{name}+{off}"),
            Some((name, _)) => name.to_string(),
            None => format!("0x{addr:x}"),
        }
    }

    /// A user stack: the stack-map id in the low half of `packed`, the pid
    /// in the high half.
    fn user_stack(&mut self, packed: u64, limit: u8, mode: StackMode) -> Value {
        let (id, pid) = (packed as u32, (packed >> 32) as u32);
        let ips: Vec<u64> = if (id as i32) < 0 {
            Vec::new()
        } else {
            self.stacks
                .as_ref()
                .and_then(|m| m.stack(id).ok().flatten())
                .unwrap_or_default()
                .into_iter()
                .take(usize::from(limit))
                .collect()
        };
        self.user.stack(pid, &ips, mode)
    }

    fn stack(&mut self, id: i64, limit: u8) -> Value {
        let Ok(id) = u32::try_from(id) else {
            return Value::Stack(Vec::new());
        };
        let ips = self
            .stacks
            .as_ref()
            .and_then(|m| m.stack(id).ok().flatten())
            .unwrap_or_default();
        let frames = ips
            .into_iter()
            .take(usize::from(limit))
            .map(|ip| match self.stack_mode {
                StackMode::Bpftrace => format!("        {}", self.symbol(ip, true)),
                StackMode::Perf => format!("\t{ip:x} {}", self.symbol(ip, true)),
                StackMode::Raw => format!("{ip:x}"),
            })
            .collect();
        Value::Stack(frames)
    }
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

/// Decodes a value of type `ty` at `bytes[off..]`.
pub fn value(bytes: &[u8], off: usize, ty: &Ty, sym: &mut Symbolizer) -> Value {
    match ty {
        Ty::Int {
            bytes: width,
            signed,
        } => {
            let raw = u64_at(bytes, off);
            let shift = 64 - u32::from(*width) * 8;
            if *signed {
                Value::Int(((raw << shift) as i64) >> shift)
            } else {
                Value::UInt((raw << shift) >> shift)
            }
        }
        Ty::Bool => Value::Bool(u64_at(bytes, off) != 0),
        Ty::Str { cap } => {
            let end = (off + *cap as usize).min(bytes.len());
            let s = bytes.get(off..end).unwrap_or_default();
            let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            let mut text = s[..n].to_vec();
            if let Some((full, str_cap, trailer)) = &sym.truncated
                && n == *full
                && cap == str_cap
            {
                text.extend_from_slice(trailer.as_bytes());
            }
            Value::Str(text)
        }
        Ty::Tuple(elems) => {
            let (offs, _) = tuple_layout(elems);
            Value::Tuple(
                elems
                    .iter()
                    .zip(offs)
                    .map(|(t, o)| value(bytes, off + o as usize, t, sym))
                    .collect(),
            )
        }
        Ty::KStack { limit } => sym.stack(u64_at(bytes, off) as i64, *limit),
        Ty::Ksym => Value::Sym(sym.symbol(u64_at(bytes, off), false)),
        Ty::UStack { limit, mode } => sym.user_stack(u64_at(bytes, off), *limit, *mode),
        Ty::Usym => {
            let pid = u64_at(bytes, off + 8) as u32;
            Value::Sym(sym.user.symbol(u64_at(bytes, off), pid))
        }
        Ty::Buffer { cap } => {
            let len = (u64_at(bytes, off) as usize).min(*cap as usize);
            let data = bytes.get(off + 8..off + 8 + len).unwrap_or_default();
            Value::Buffer(data.to_vec())
        }
        Ty::Array { elem, len } => {
            let width = elem.elem_size() as usize;
            Value::Array(
                (0..*len as usize)
                    .map(|i| {
                        let mut word = [0u8; 8];
                        let at = off + i * width;
                        if let Some(b) = bytes.get(at..at + width) {
                            word[..width].copy_from_slice(b);
                        }
                        value(&word, 0, elem, sym)
                    })
                    .collect(),
            )
        }
        Ty::Record(fields) => {
            let (offs, _) = ferret_compiler::types::record_layout(fields);
            Value::Record(
                fields
                    .iter()
                    .zip(offs)
                    .map(|((n, t), o)| (n.clone(), value(bytes, off + o as usize, t, sym)))
                    .collect(),
            )
        }
        Ty::Inet => Value::Str(
            ferret_output::special::inet(
                u64_at(bytes, off),
                bytes.get(off + 8..off + 24).unwrap_or_default(),
            )
            .into_bytes(),
        ),
        Ty::MacAddr => Value::Str(
            ferret_output::special::mac(bytes.get(off..off + 6).unwrap_or_default()).into_bytes(),
        ),
        Ty::Timestamp { format } => {
            let ns = sym.boot_wall_ns + i128::from(u64_at(bytes, off));
            let fmt = sym
                .time_formats
                .get(*format as usize)
                .cloned()
                .unwrap_or_default();
            Value::Str(crate::timefmt::format(ns, &fmt, sym.max_strlen))
        }
        Ty::Errno => Value::Str(
            ferret_output::special::strerror(u64_at(bytes, off) as i64)
                .as_bytes()
                .to_vec(),
        ),
        Ty::Username => Value::Str(sym.username(u64_at(bytes, off)).into_bytes()),
        Ty::Ptr(_) => Value::pointer(u64_at(bytes, off)),
        Ty::Enum(e) => {
            let shift = 64 - u32::from(e.bytes.clamp(1, 8)) * 8;
            let raw = u64_at(bytes, off);
            let v = if e.signed {
                ((raw << shift) as i64) >> shift
            } else {
                ((raw << shift) >> shift) as i64
            };
            // bpftrace prints an unnamed value as its number.
            Value::Symbolic {
                name: e
                    .name_of(v)
                    .map_or_else(|| (v as u64).to_string(), str::to_string),
                value: v as u64,
            }
        }
        Ty::CgroupPath { filter } => Value::Str(
            sym.cgroups
                .describe(u64_at(bytes, off), filter)
                .into_bytes(),
        ),
        Ty::Struct(s) => Value::Record(
            s.fields
                .iter()
                .map(|f| {
                    let at = off + f.offset as usize;
                    let v = match f.bits {
                        Some((shift, width)) => bitfield(bytes, at, shift, width, &f.ty, sym),
                        None => c_value(bytes, at, &f.ty, sym),
                    };
                    (f.name.clone(), v)
                })
                .collect(),
        ),
        Ty::None => Value::None,
    }
}

/// Decodes a value laid out as in C (a struct's member, an element of a C
/// array): scalars take their C width, strings are `char[cap]`.
fn c_value(bytes: &[u8], off: usize, ty: &Ty, sym: &mut Symbolizer) -> Value {
    match ty {
        Ty::Str { cap } => {
            let s = bytes.get(off..off + *cap as usize).unwrap_or_default();
            match s.iter().position(|&b| b == 0) {
                Some(n) => Value::Str(s[..n].to_vec()),
                // A full array is shown cut short, as bpftrace does.
                None => Value::Str([s, sym.trailer.as_bytes()].concat()),
            }
        }
        Ty::Array { elem, len } => {
            let width = elem.elem_size() as usize;
            Value::Array(
                (0..*len as usize)
                    .map(|i| c_value(bytes, off + i * width, elem, sym))
                    .collect(),
            )
        }
        Ty::Struct(_) | Ty::None => value(bytes, off, ty, sym),
        scalar => {
            // Only its own bytes: the next member's must not leak in.
            let width = scalar.elem_size().min(8) as usize;
            let mut word = [0u8; 8];
            if let Some(b) = bytes.get(off..off + width) {
                word[..width].copy_from_slice(b);
            }
            value(&word, 0, scalar, sym)
        }
    }
}

/// A bitfield member: `width` bits from bit `shift` of the bytes at `off`,
/// unsigned as bpftrace reads them, then shown as the member's type.
fn bitfield(
    bytes: &[u8],
    off: usize,
    shift: u8,
    width: u8,
    ty: &Ty,
    sym: &mut Symbolizer,
) -> Value {
    let mut word = [0u8; 8];
    let avail = bytes.len().saturating_sub(off).min(8);
    if let Some(b) = bytes.get(off..off + avail) {
        word[..avail].copy_from_slice(b);
    }
    let raw = u64::from_le_bytes(word) >> shift;
    let v = if width >= 64 {
        raw
    } else {
        raw & ((1u64 << width) - 1)
    };
    value(&v.to_le_bytes(), 0, ty, sym)
}

/// A user map read from the kernel: (key, per-CPU values or one value).
pub type RawEntries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// Builds the printable dump of one map from its raw entries.
pub fn map_dump(info: &MapInfo, raw: RawEntries, sym: &mut Symbolizer) -> MapDump {
    let key_of = |k: &[u8], sym: &mut Symbolizer| info.key.as_ref().map(|t| value(k, 0, t, sym));
    let user_key_len = info.key_size as usize - if info.kind.is_histogram() { 8 } else { 0 };
    let mut entries = Vec::new();
    if info.kind.is_histogram() {
        // Group `key ++ bucket` entries by key.
        let mut grouped: BTreeMap<Vec<u8>, BTreeMap<u64, u64>> = BTreeMap::new();
        for (k, vals) in raw {
            let bucket = u64_at(&k, user_key_len);
            let count: u64 = vals.iter().map(|v| u64_at(v, 0)).sum();
            let user = k.get(..user_key_len).unwrap_or_default().to_vec();
            *grouped.entry(user).or_default().entry(bucket).or_default() += count;
        }
        for (k, buckets) in grouped {
            let value = match &info.kind {
                MapKind::Hist { k: bits } => MapValue::Hist { k: *bits, buckets },
                MapKind::Lhist { min, max, step } => MapValue::Lhist {
                    min: *min,
                    max: *max,
                    step: *step,
                    buckets,
                },
                _ => continue,
            };
            entries.push(MapEntry {
                key: key_of(&k, sym),
                value,
            });
        }
    } else {
        for (k, vals) in raw {
            let value = match &info.kind {
                MapKind::Plain(ty) => MapValue::Plain(value(
                    vals.first().map_or(&[][..], Vec::as_slice),
                    0,
                    ty,
                    sym,
                )),
                MapKind::Count => MapValue::Count(vals.iter().map(|v| u64_at(v, 0)).sum()),
                MapKind::Sum { signed } => {
                    let total = vals.iter().fold(0u64, |a, v| a.wrapping_add(u64_at(v, 0)));
                    MapValue::Sum(if *signed {
                        Value::Int(total as i64)
                    } else {
                        Value::UInt(total)
                    })
                }
                MapKind::Min | MapKind::Max => {
                    let set = vals
                        .iter()
                        .filter(|v| u64_at(v, 8) != 0)
                        .map(|v| u64_at(v, 0) as i64);
                    if info.kind == MapKind::Min {
                        MapValue::Min(set.min().unwrap_or(0))
                    } else {
                        MapValue::Max(set.max().unwrap_or(0))
                    }
                }
                MapKind::Avg | MapKind::Stats => {
                    let total = vals
                        .iter()
                        .fold(0i64, |a, v| a.wrapping_add(u64_at(v, 0) as i64));
                    let count = vals.iter().map(|v| u64_at(v, 8)).sum();
                    if info.kind == MapKind::Avg {
                        MapValue::Avg { total, count }
                    } else {
                        MapValue::Stats { total, count }
                    }
                }
                MapKind::Hist { .. } | MapKind::Lhist { .. } => continue,
            };
            if info.array && never_updated(&value, &vals) {
                continue;
            }
            entries.push(MapEntry {
                key: key_of(&k, sym),
                value,
            });
        }
    }
    MapDump {
        name: info.name.clone(),
        entries,
    }
}

/// A one-slot array always has its slot; all-zero per-CPU values (no
/// count, no min/max set) mean the program never updated it.
fn never_updated(value: &MapValue, vals: &[Vec<u8>]) -> bool {
    match value {
        MapValue::Count(0) | MapValue::Avg { count: 0, .. } | MapValue::Stats { count: 0, .. } => {
            true
        }
        MapValue::Min(_) | MapValue::Max(_) => vals.iter().all(|v| u64_at(v, 8) == 0),
        MapValue::Sum(_) => vals.iter().all(|v| v.iter().all(|&b| b == 0)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_their_declared_width() {
        let mut sym = Symbolizer::new(None);
        let b = (-1i64).to_le_bytes();
        assert_eq!(
            value(
                &b,
                0,
                &Ty::Int {
                    bytes: 4,
                    signed: false
                },
                &mut sym
            ),
            Value::UInt(0xffff_ffff)
        );
        assert_eq!(value(&b, 0, &Ty::I64, &mut sym), Value::Int(-1));
    }

    #[test]
    fn strings_stop_at_nul() {
        let mut sym = Symbolizer::new(None);
        let b = *b"bash\0xyz";
        assert_eq!(
            value(&b, 0, &Ty::Str { cap: 8 }, &mut sym),
            Value::Str(b"bash".to_vec())
        );
    }

    #[test]
    fn min_ignores_cpus_that_saw_nothing() {
        let info = MapInfo {
            name: "@m".into(),
            symbol: "m".into(),
            key: None,
            kind: MapKind::Min,
            key_size: 4,
            array: true,
            span: ferret_syntax::Span::default(),
            max_entries: 1,
            declared: false,
        };
        let cpu = |v: i64, set: u64| [v.to_le_bytes(), set.to_le_bytes()].concat();
        let raw = vec![(vec![0; 8], vec![cpu(5, 1), cpu(0, 0)])];
        let dump = map_dump(&info, raw, &mut Symbolizer::new(None));
        assert_eq!(dump.entries[0].value, MapValue::Min(5));
    }

    #[test]
    fn structs_decode_member_by_member_in_c_layout() {
        use ferret_compiler::types::{StructField, StructTy};
        use std::sync::Arc;
        let field = |name: &str, offset, bits, ty| StructField {
            name: name.into(),
            offset,
            bits,
            ty,
        };
        let int = |bytes, signed| Ty::Int { bytes, signed };
        let inner = Arc::new(StructTy {
            name: "struct inner".into(),
            size: 2,
            fields: vec![field("x", 0, None, int(2, true))],
            c_type: 1,
        });
        let outer = Ty::Struct(Arc::new(StructTy {
            name: "struct outer".into(),
            size: 16,
            fields: vec![
                field("a", 0, None, int(1, false)),
                // A signed bitfield reads unsigned, as in bpftrace.
                field("b", 1, Some((2, 3)), int(4, true)),
                field("name", 2, None, Ty::Str { cap: 4 }),
                field("in", 6, None, Ty::Struct(inner)),
                field(
                    "arr",
                    8,
                    None,
                    Ty::Array {
                        elem: Box::new(int(2, false)),
                        len: 2,
                    },
                ),
                field("p", 12, None, Ty::None),
            ],
            c_type: 0,
        }));
        let bytes = [
            0xff,
            0b0001_1100,
            b'a',
            b'b',
            b'c',
            b'd',
            0xfe,
            0xff,
            1,
            0,
            2,
            0,
            0,
            0,
            0,
            0,
        ];
        let mut sym = Symbolizer::new(None);
        let record = |fields: Vec<(&str, Value)>| {
            Value::Record(
                fields
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
            )
        };
        assert_eq!(
            value(&bytes, 0, &outer, &mut sym),
            record(vec![
                ("a", Value::UInt(255)),
                ("b", Value::Int(7)),
                // No NUL in the array: shown cut short.
                ("name", Value::Str(b"abcd..".to_vec())),
                ("in", record(vec![("x", Value::Int(-2))])),
                ("arr", Value::Array(vec![Value::UInt(1), Value::UInt(2)])),
                ("p", Value::None),
            ])
        );
    }
}
