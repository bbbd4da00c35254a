//! Project tasks. `cargo xtask bench` compares ferret with bpftrace.

mod bench;
mod bpf;
mod hammer;
mod proc;
mod report;

type Result<T, E = String> = std::result::Result<T, E>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::Options::parse(&args[1..]).and_then(|o| bench::run(&o)),
        Some("__hammer") => hammer::main(&args[1..]),
        _ => Err(format!("usage: cargo xtask bench ...\n{}", bench::usage())),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
