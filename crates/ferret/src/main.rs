//! ferret: bpftrace's language and BCC's tools, compiled straight to eBPF.

mod cgroups;
mod cli;
mod decode;
mod list;
mod process;
mod run;
mod signals;
mod sink;
mod target;
mod timefmt;
mod usyms;

use std::process::ExitCode;

use clap::Parser;
use ferret_syntax::{Diagnostic, SourceFile};

/// Why ferret stops with exit status 1.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags or unreadable input.
    Usage(String),
    /// Errors pointing into the program.
    Diagnostics(SourceFile, Vec<Diagnostic>),
    /// The kernel refused something (privileges, attach, load).
    Kernel(String),
}

fn main() -> ExitCode {
    let raw = match cli::RawArgs::try_parse() {
        Ok(raw) => raw,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let settings = match raw.resolve() {
        Ok(s) => s,
        Err(msg) => return fail(&Failure::Usage(msg)),
    };
    let result = match &settings.command {
        cli::Command::Version => {
            println!("ferret v{}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        cli::Command::List { pattern } => list::list(pattern, settings.verbose).map(|()| 0),
        cli::Command::Run(run) => run::run(run),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(f) => fail(&f),
    }
}

fn fail(f: &Failure) -> ExitCode {
    match f {
        Failure::Usage(msg) => {
            eprintln!("ferret: {msg}\nTry 'ferret --help' for more information.")
        }
        Failure::Diagnostics(file, diags) => {
            for d in diags {
                eprint!("{}", d.render(file));
            }
        }
        Failure::Kernel(msg) => eprintln!("ferret: {msg}"),
    }
    ExitCode::from(1)
}
