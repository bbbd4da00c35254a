//! Project tasks. `cargo xtask bench` compares ferret with bpftrace;
//! `cargo xtask vm-test` runs the kernel tests inside other kernels.

mod bench;
mod bpf;
mod hammer;
mod proc;
mod report;
mod tools;
mod vm;

type Result<T, E = String> = std::result::Result<T, E>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::Options::parse(&args[1..]).and_then(|o| bench::run(&o)),
        Some("vm-test") => vm::Options::parse(&args[1..]).and_then(|o| vm::run(&o)),
        Some("__hammer") => hammer::main(&args[1..]),
        _ => Err(format!("{}\n{}", bench::usage(), vm::usage())),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
