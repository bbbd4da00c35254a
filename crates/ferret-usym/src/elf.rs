//! One user-space ELF file: its functions, where they are in the file (the
//! offset the kernel's uprobes take) and its USDT probes.

use std::fmt;
use std::path::{Path, PathBuf};

use object::elf::{self, FileHeader64};
use object::read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _, SectionHeader as _, Sym};
use object::{Endianness, Object as _, ObjectSection as _};

use crate::usdt::{self, SpecError, UsdtArg};

/// Why a file could not be read as a binary to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    Io { path: PathBuf, message: String },
    NotElf { path: PathBuf },
    Unsupported { path: PathBuf, what: String },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Io { path, message } => {
                write!(f, "cannot read {}: {message}", path.display())
            }
            ElfError::NotElf { path } => write!(f, "{} is not an ELF file", path.display()),
            ElfError::Unsupported { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for ElfError {}

/// A function symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Its virtual address in the file (before any load bias).
    pub address: u64,
    /// Bytes, 0 when the symbol does not say.
    pub size: u64,
    /// Where its first byte is in the file.
    pub file_offset: u64,
}

/// One USDT probe site from `.note.stapsdt`. A probe written once in the
/// source may have several sites (inlined, unrolled): one note each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtProbe {
    pub provider: String,
    pub name: String,
    /// The probe's instruction, as a virtual address.
    pub address: u64,
    /// The same, as an offset in the file.
    pub file_offset: u64,
    /// The file offset of the probe's semaphore (a u16 the tracer counts
    /// up while attached), if it has one.
    pub semaphore_offset: Option<u64>,
    /// The argument specs as written (`-4@%eax 8@-8(%rbp)`).
    pub args_text: String,
}

impl UsdtProbe {
    pub fn args(&self) -> Result<Vec<UsdtArg>, SpecError> {
        usdt::parse_args(&self.args_text)
    }
}

/// The parts of an ELF file that probing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub path: PathBuf,
    /// `ET_EXEC` (a non-PIE executable) or `ET_DYN` (PIE or library), or
    /// another type.
    pub elf_type: u16,
    /// Function symbols (`.symtab` then `.dynsym`), sorted by name, one per
    /// name.
    pub functions: Vec<Function>,
    /// Data symbols (`STT_OBJECT`: global variables), sorted by name, one
    /// per name.
    pub data: Vec<Function>,
    /// USDT probe sites in note order.
    pub usdt: Vec<UsdtProbe>,
    /// Loadable segments: (virtual address, memory size, file offset).
    segments: Vec<(u64, u64, u64)>,
}

/// Whether `data` starts like an ELF file, and its `e_type` if so.
pub fn elf_type(data: &[u8]) -> Option<u16> {
    if !data.starts_with(&elf::ELFMAG) || data.len() < 18 {
        return None;
    }
    let little = data.get(5) == Some(&elf::ELFDATA2LSB);
    let bytes = [data[16], data[17]];
    Some(if little {
        u16::from_le_bytes(bytes)
    } else {
        u16::from_be_bytes(bytes)
    })
}

impl Binary {
    /// A binary described by hand (tests): `functions` sorted by name;
    /// no segments, so [`Self::file_offset`] knows nothing.
    pub fn from_parts(path: &Path, functions: Vec<Function>, usdt: Vec<UsdtProbe>) -> Binary {
        let mut functions = functions;
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Binary {
            path: path.to_path_buf(),
            elf_type: elf::ET_DYN,
            functions,
            data: Vec::new(),
            usdt,
            segments: Vec::new(),
        }
    }

    /// Reads `path`, with the symbols of its separate debug file when one
    /// is installed (`/usr/lib/debug/.build-id/xx/yyyy.debug`, as bcc and
    /// bpftrace find it): a stripped library's static functions are there.
    pub fn read(path: &Path) -> Result<Binary, ElfError> {
        let data = std::fs::read(path).map_err(|e| ElfError::Io {
            path: path.to_path_buf(),
            message: io_message(&e),
        })?;
        let mut binary = Self::parse(path, &data)?;
        if let Some(debug) =
            build_id(&data).and_then(|id| debug_file_path(Path::new(DEBUG_DIR), &id))
            && let Ok(debug_data) = std::fs::read(&debug)
            && let Ok(file) = ElfFile64::<Endianness>::parse(&debug_data[..])
        {
            // Its addresses are the binary's: the binary's segments place
            // them in the file.
            for (list, types) in [
                (
                    &mut binary.functions,
                    &[elf::STT_FUNC, elf::STT_GNU_IFUNC][..],
                ),
                (&mut binary.data, &[elf::STT_OBJECT][..]),
            ] {
                let extra = Self::symbols_of(&binary.segments, &file, types);
                list.extend(extra);
                list.sort_by(|a, b| a.name.cmp(&b.name));
                list.dedup_by(|b, a| a.name == b.name);
            }
        }
        Ok(binary)
    }

    /// Parses the bytes of the file at `path`.
    pub fn parse(path: &Path, data: &[u8]) -> Result<Binary, ElfError> {
        let Some(elf_type) = elf_type(data) else {
            return Err(ElfError::NotElf {
                path: path.to_path_buf(),
            });
        };
        let unsupported = |what: String| ElfError::Unsupported {
            path: path.to_path_buf(),
            what,
        };
        if data.get(4) != Some(&elf::ELFCLASS64) {
            return Err(unsupported("32-bit ELF files are not supported".into()));
        }
        let file = ElfFile64::<Endianness>::parse(data)
            .map_err(|e| unsupported(format!("malformed ELF file: {e}")))?;
        let endian = file.endian();
        let header: &FileHeader64<Endianness> = file.elf_header();
        let segments: Vec<(u64, u64, u64)> = header
            .program_headers(endian, data)
            .unwrap_or_default()
            .iter()
            .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
            .map(|ph| (ph.p_vaddr(endian), ph.p_memsz(endian), ph.p_offset(endian)))
            .collect();
        let mut binary = Binary {
            path: path.to_path_buf(),
            elf_type,
            functions: Vec::new(),
            data: Vec::new(),
            usdt: Vec::new(),
            segments,
        };
        binary.functions = Self::symbols_of(
            &binary.segments,
            &file,
            &[elf::STT_FUNC, elf::STT_GNU_IFUNC],
        );
        binary.data = Self::symbols_of(&binary.segments, &file, &[elf::STT_OBJECT]);
        binary.usdt = binary.read_usdt(&file);
        Ok(binary)
    }

    /// The file offset of virtual address `address`, if a loadable segment
    /// holds it.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        offset_in(&self.segments, address)
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.functions[i])
    }

    /// The function whose bytes hold `address` (or that starts there).
    pub fn function_at(&self, address: u64) -> Option<&Function> {
        self.functions
            .iter()
            .filter(|f| {
                f.address == address || (address > f.address && address - f.address < f.size)
            })
            .min_by_key(|f| (f.address != address, f.name.starts_with('_')))
    }

    /// The address of function or variable `name`.
    pub fn symbol_address(&self, name: &str) -> Option<u64> {
        if let Some(f) = self.function(name) {
            return Some(f.address);
        }
        self.data
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| self.data[i].address)
    }

    /// Defined symbols of the given `STT_*` types, placed in the file by
    /// `segments`, sorted by name, one per name.
    fn symbols_of(
        segments: &[(u64, u64, u64)],
        file: &ElfFile64<'_, Endianness>,
        types: &[u8],
    ) -> Vec<Function> {
        let endian = file.endian();
        let mut out: Vec<Function> = Vec::new();
        for table in [file.elf_symbol_table(), file.elf_dynamic_symbol_table()] {
            let strings = table.strings();
            for sym in table.symbols() {
                if !types.contains(&sym.st_type())
                    || sym.st_shndx(endian) == elf::SHN_UNDEF
                    || sym.st_value(endian) == 0
                {
                    continue;
                }
                let Ok(name) = sym.name(endian, strings) else {
                    continue;
                };
                let Ok(name) = std::str::from_utf8(name) else {
                    continue;
                };
                let address = sym.st_value(endian);
                let Some(file_offset) = offset_in(segments, address) else {
                    continue;
                };
                out.push(Function {
                    name: name.to_string(),
                    address,
                    size: sym.st_size(endian),
                    file_offset,
                });
            }
        }
        // Stable: of several symbols with one name, the first (.symtab's)
        // stays.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|b, a| a.name == b.name);
        out
    }

    fn read_usdt(&self, file: &ElfFile64<'_, Endianness>) -> Vec<UsdtProbe> {
        let endian = file.endian();
        let data = file.data();
        let sections = file.elf_section_table();
        // Prelinking moves code after the notes were written; the notes
        // record where `.stapsdt.base` was, so sites move by as much as it.
        let base = file.section_by_name(".stapsdt.base").map(|s| s.address());
        let mut out = Vec::new();
        for section in sections.iter() {
            if section.sh_type(endian) != elf::SHT_NOTE {
                continue;
            }
            let Ok(name) = sections.section_name(endian, section) else {
                continue;
            };
            if name != b".note.stapsdt" {
                continue;
            }
            let Ok(Some(mut notes)) = section.notes(endian, data) else {
                continue;
            };
            while let Ok(Some(note)) = notes.next() {
                if note.name() != b"stapsdt" || note.n_type(endian) != 3 {
                    continue;
                }
                if let Some(probe) = self.usdt_note(note.desc(), base) {
                    out.push(probe);
                }
            }
        }
        out
    }

    fn usdt_note(&self, desc: &[u8], base: Option<u64>) -> Option<UsdtProbe> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                desc.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let (pc, note_base, sema) = (word(0)?, word(1)?, word(2)?);
        let mut strings = desc.get(24..)?.split(|&b| b == 0);
        let mut next = || {
            std::str::from_utf8(strings.next()?)
                .ok()
                .map(str::to_string)
        };
        let (provider, name, args_text) = (next()?, next()?, next().unwrap_or_default());
        let address = match base {
            Some(base) if note_base != 0 => pc.wrapping_add(base).wrapping_sub(note_base),
            _ => pc,
        };
        Some(UsdtProbe {
            provider,
            name,
            address,
            file_offset: self.file_offset(address)?,
            semaphore_offset: if sema == 0 {
                None
            } else {
                self.file_offset(sema)
            },
            args_text,
        })
    }
}

/// Where distributions install separate debug files.
const DEBUG_DIR: &str = "/usr/lib/debug";

fn offset_in(segments: &[(u64, u64, u64)], address: u64) -> Option<u64> {
    segments
        .iter()
        .find(|(vaddr, size, _)| address >= *vaddr && address - vaddr < (*size).max(1))
        .map(|(vaddr, _, off)| address - vaddr + off)
}

/// The GNU build id of the ELF file `data`, from its `.note.gnu.build-id`.
fn build_id(data: &[u8]) -> Option<Vec<u8>> {
    let file = ElfFile64::<Endianness>::parse(data).ok()?;
    let endian = file.endian();
    let sections = file.elf_section_table();
    let (_, section) = sections
        .enumerate()
        .find(|(_, s)| sections.section_name(endian, s).ok() == Some(b".note.gnu.build-id"))?;
    let mut notes = section.notes(endian, data).ok()??;
    while let Ok(Some(note)) = notes.next() {
        if note.name() == b"GNU" && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
            return Some(note.desc().to_vec());
        }
    }
    None
}

/// `DIR/.build-id/ab/cdef….debug` for build id `abcdef…`, if it exists.
fn debug_file_path(dir: &Path, id: &[u8]) -> Option<PathBuf> {
    let (first, rest) = id.split_first()?;
    let hex: String = rest.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!(".build-id/{first:02x}/{hex}.debug"));
    path.is_file().then_some(path)
}

fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    // "No such file or directory (os error 2)" → without the number.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_has_its_own_functions() {
        let exe = std::env::current_exe().expect("current exe");
        let bin = Binary::read(&exe).expect("reads");
        assert!(bin.elf_type == elf::ET_DYN || bin.elf_type == elf::ET_EXEC);
        let main = bin.function("main").expect("main");
        assert!(main.size > 0);
        assert_eq!(bin.function_at(main.address), Some(main));
        assert_eq!(
            bin.function_at(main.address + 1).map(|f| &f.name),
            Some(&main.name)
        );
        assert!(bin.functions.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(bin.file_offset(main.address), Some(main.file_offset));
    }

    #[test]
    fn debug_files_are_found_by_build_id() {
        let exe = std::env::current_exe().expect("current exe");
        let data = std::fs::read(&exe).expect("read self");
        // Rust test binaries carry a build id on Linux; nothing to check
        // where the linker leaves it out.
        let Some(id) = build_id(&data) else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("ferret-debug-{}", std::process::id()));
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!(".build-id/{}/{}.debug", &hex[..2], &hex[2..]));
        assert_eq!(debug_file_path(&dir, &id), None);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert_eq!(debug_file_path(&dir, &id), Some(path));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn not_elf() {
        let err = Binary::parse(Path::new("/x/notes.txt"), b"hello").unwrap_err();
        assert_eq!(err.to_string(), "/x/notes.txt is not an ELF file");
        let err = Binary::read(Path::new("/nonexistent/ferret")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read /nonexistent/ferret: No such file or directory"
        );
    }
}
