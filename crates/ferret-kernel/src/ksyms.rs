//! Kernel symbols from `/proc/kallsyms`, for printing stacks and `ksym()`.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
};

use crate::error::{KernelError, Result};

const KALLSYMS: &str = "/proc/kallsyms";

#[derive(Debug, Clone, Copy)]
struct Sym {
    addr: u64,
    name_start: u32,
    name_len: u32,
}

/// A snapshot of the kernel symbol table.
///
/// Names live in one string so that ~200k symbols cost two allocations.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    names: String,
    /// Text (code) symbols, sorted by address, for [`Self::resolve`].
    text: Vec<Sym>,
    /// Everything else, for [`Self::address_of`].
    other: Vec<Sym>,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`. Without privileges every address reads as 0,
    /// in which case [`Self::is_empty`] is true.
    pub fn load() -> Result<Self> {
        let path = Path::new(KALLSYMS);
        let file = File::open(path).map_err(|e| KernelError::io(path, e))?;
        Self::parse(BufReader::with_capacity(1 << 16, file)).map_err(|e| KernelError::io(path, e))
    }

    /// Parses kallsyms text (`ADDR TYPE NAME [\t[MODULE]]` lines).
    pub fn parse<R: BufRead>(mut reader: R) -> std::io::Result<Self> {
        let mut syms = Self::default();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            let mut fields = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if addr == 0 {
                continue;
            }
            let (Ok(name_start), Ok(name_len)) =
                (u32::try_from(syms.names.len()), u32::try_from(name.len()))
            else {
                continue;
            };
            syms.names.push_str(name);
            let sym = Sym {
                addr,
                name_start,
                name_len,
            };
            if matches!(kind, "t" | "T" | "w" | "W") {
                syms.text.push(sym);
            } else {
                syms.other.push(sym);
            }
        }
        syms.text.sort_by_key(|s| s.addr);
        Ok(syms)
    }

    fn name(&self, sym: &Sym) -> &str {
        let start = sym.name_start as usize;
        self.names
            .get(start..start + sym.name_len as usize)
            .unwrap_or("")
    }

    /// True when no symbol had an address (kptr_restrict, not root).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.other.is_empty()
    }

    /// Number of symbols with an address.
    pub fn len(&self) -> usize {
        self.text.len() + self.other.len()
    }

    /// The code symbol containing `addr` and the offset into it.
    pub fn resolve(&self, addr: u64) -> Option<(&str, u64)> {
        let idx = self.text.partition_point(|s| s.addr <= addr);
        let sym = self.text.get(idx.checked_sub(1)?)?;
        Some((self.name(sym), addr - sym.addr))
    }

    /// The address of a symbol by exact name (code first, then data).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.text
            .iter()
            .chain(&self.other)
            .find(|s| self.name(s) == name)
            .map(|s| s.addr)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81000100 t helper
ffffffff81002000 D some_data
ffffffff81001000 T do_sys_open
ffffffffc0001000 t mod_fn\t[ext4]
0000000000000000 A fixed_percpu_data
";

    #[test]
    fn resolves_and_looks_up() {
        let syms = KernelSymbols::parse(Cursor::new(SAMPLE)).map_err(|e| e.to_string());
        let Ok(syms) = syms else {
            panic!("{syms:?}");
        };
        assert_eq!(syms.len(), 5);
        assert_eq!(syms.resolve(0xffffffff81000000), Some(("_stext", 0)));
        assert_eq!(syms.resolve(0xffffffff81000180), Some(("helper", 0x80)));
        assert_eq!(
            syms.resolve(0xffffffff81001010),
            Some(("do_sys_open", 0x10))
        );
        assert_eq!(syms.resolve(0xffffffffc0001004), Some(("mod_fn", 4)));
        assert_eq!(syms.resolve(0x1000), None);
        assert_eq!(syms.address_of("some_data"), Some(0xffffffff81002000));
        assert_eq!(syms.address_of("do_sys_open"), Some(0xffffffff81001000));
        assert_eq!(syms.address_of("fixed_percpu_data"), None);
        assert_eq!(syms.address_of("nope"), None);
    }

    #[test]
    fn restricted_kallsyms_is_empty() {
        let text = "0000000000000000 T _stext\n0000000000000000 t x\n";
        let syms = KernelSymbols::parse(Cursor::new(text)).map_err(|e| e.to_string());
        assert!(matches!(syms, Ok(ref s) if s.is_empty()));
    }
}
