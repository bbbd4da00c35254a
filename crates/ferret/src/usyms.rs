//! User-space addresses to symbol names, as bpftrace prints them: through
//! the process's memory map, its files' symbol tables and JIT perf maps
//! (`/tmp/perf-PID.map`), with blazesym (the symbolizer bpftrace uses too).

use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{Input, Symbolized};
use ferret_compiler::config::StackMode;
use ferret_output::Value;

/// One address's symbol: name, offset into it, and the file it is in.
struct UserSymbol {
    name: String,
    offset: u64,
    module: Option<String>,
}

/// Symbolizes user addresses; blazesym's caches are kept across calls and
/// made on first need.
#[derive(Default)]
pub struct UserSymbols {
    symbolizer: Option<blazesym::symbolize::Symbolizer>,
}

impl UserSymbols {
    /// `addrs` of process `pid`; None where unknown, and everywhere once
    /// the process is gone.
    fn resolve(&mut self, pid: u32, addrs: &[u64]) -> Vec<Option<UserSymbol>> {
        let unknown = || addrs.iter().map(|_| None).collect();
        if pid == 0 || addrs.is_empty() {
            return unknown();
        }
        let symbolizer = self.symbolizer.get_or_insert_with(|| {
            blazesym::symbolize::Symbolizer::builder()
                .enable_demangling(true)
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build()
        });
        let mut process = Process::new(blazesym::Pid::from(pid));
        process.debug_syms = false;
        let Ok(syms) = symbolizer.symbolize(&Source::Process(process), Input::AbsAddr(addrs))
        else {
            return unknown();
        };
        syms.into_iter()
            .map(|s| match s {
                Symbolized::Sym(sym) => Some(UserSymbol {
                    name: sym.name.into_owned(),
                    offset: sym.offset as u64,
                    module: sym.module.map(|m| m.to_string_lossy().into_owned()),
                }),
                Symbolized::Unknown(_) => None,
            })
            .collect()
    }

    /// `usym`: the symbol's name, or the address in hex.
    pub fn symbol(&mut self, addr: u64, pid: u32) -> String {
        match self.resolve(pid, &[addr]).pop().flatten() {
            Some(sym) => sym.name,
            None => format!("0x{addr:x}"),
        }
    }

    /// Stack frames of process `pid`, each the line bpftrace prints for it
    /// in `mode`: `        func+off`, perf's `\tADDR func+off (file)`, or
    /// the bare hex address; frames without a symbol as `0xADDR`.
    pub fn stack(&mut self, pid: u32, ips: &[u64], mode: StackMode) -> Value {
        if mode == StackMode::Raw {
            return Value::Stack(ips.iter().map(|ip| format!("{ip:x}")).collect());
        }
        let syms = self.resolve(pid, ips);
        let frames = ips
            .iter()
            .zip(syms)
            .map(|(ip, sym)| match (mode, sym) {
                (StackMode::Perf, Some(s)) => format!(
                    "\t{ip:x} {}+{} ({})",
                    s.name,
                    s.offset,
                    s.module.as_deref().unwrap_or("[unknown]")
                ),
                (StackMode::Perf, None) => format!("\t{ip:x} 0x{ip:x} ([unknown])"),
                (_, Some(s)) => format!("        {}+{}", s.name, s.offset),
                (_, None) => format!("        0x{ip:x}"),
            })
            .collect();
        Value::Stack(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    #[unsafe(no_mangle)]
    extern "C" fn ferret_usyms_test_target() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn symbolizes_this_process() {
        let addr = ferret_usyms_test_target as *const () as u64;
        let mut u = UserSymbols::default();
        let me = std::process::id();
        assert_eq!(u.symbol(addr, me), "ferret_usyms_test_target");
        assert_eq!(
            u.stack(me, &[addr + 1], StackMode::Bpftrace),
            Value::Stack(vec!["        ferret_usyms_test_target+1".into()])
        );
        let Value::Stack(perf) = u.stack(me, &[addr, 8], StackMode::Perf) else {
            panic!("perf lines");
        };
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            perf[0],
            format!("\t{addr:x} ferret_usyms_test_target+0 ({})", exe.display())
        );
        assert_eq!(perf[1], "\t8 0x8 ([unknown])");
        assert_eq!(
            u.stack(me, &[0x10], StackMode::Raw),
            Value::Stack(vec!["10".into()])
        );
        assert_eq!(u.symbol(8, me), "0x8");
    }
}
