//! User-space binaries, as uprobes and USDT probes need them: finding the
//! file a probe names (`/bin/bash`, `bash`, `libc`, with `-p` inside the
//! process's view), its function symbols with their file offsets, and its
//! USDT probes with their argument specs.
//!
//! ELF files are read with the `object` crate; the loader cache and USDT
//! argument specs, which no crate reads, by hand.

pub mod elf;
pub mod insn;
pub mod ldcache;
pub mod paths;
pub mod usdt;

pub use elf::{Binary, ElfError, Function, UsdtProbe};
pub use paths::Resolver;
pub use usdt::{ArgLocation, SpecError, UsdtArg};

/// The demangled form of a C++ symbol (`_ZN2ns1fEi` → `ns::f(int)`), or
/// None when `name` is not one.
pub fn demangle_cpp(name: &str) -> Option<String> {
    if !name.starts_with("_Z") {
        return None;
    }
    let sym = cpp_demangle::Symbol::new(name).ok()?;
    sym.demangle().ok()
}

/// A demangled C++ name without its parameter list (`ns::f(int)` →
/// `ns::f`), for matching names written without one.
pub fn without_parameters(demangled: &str) -> &str {
    // The list is the last balanced "(...)" at the top level.
    let bytes = demangled.as_bytes();
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return &demangled[..i];
                }
            }
            _ if depth == 0 && i + 1 == bytes.len() => return demangled,
            _ => {}
        }
    }
    demangled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpp_names() {
        assert_eq!(demangle_cpp("_ZN2ns1fEi").as_deref(), Some("ns::f(int)"));
        assert_eq!(demangle_cpp("main"), None);
        assert_eq!(without_parameters("ns::f(int)"), "ns::f");
        assert_eq!(without_parameters("ns::f(int) const"), "ns::f(int) const");
        assert_eq!(without_parameters("f(void (*)(int))"), "f");
        assert_eq!(without_parameters("plain"), "plain");
    }
}
