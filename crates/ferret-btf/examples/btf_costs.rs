//! What reading and indexing the running kernel's BTF costs, in CPU time
//! (steadier than wall time on a busy machine):
//! `cargo run --release -p ferret-btf --example btf_costs`.

use std::time::Duration;

use ferret_btf::{Btf, NameKind};

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    for _ in 0..3 {
        let t = cpu_time();
        let btf = match Btf::vmlinux() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{e}");
                return;
            }
        };
        let parsed = cpu_time() - t;
        btf.find(NameKind::Struct, "task_struct");
        let structs = cpu_time() - t;
        btf.enum_constant("BPF_ANY");
        let enums = cpu_time() - t;
        println!(
            "{} types: load+parse {parsed:?}, struct index +{:?}, enum index +{:?}",
            btf.last_id(),
            structs - parsed,
            enums - structs
        );
    }
}
