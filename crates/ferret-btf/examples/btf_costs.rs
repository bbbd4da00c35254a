//! What reading and indexing the running kernel's BTF costs:
//! `cargo run --release -p ferret-btf --example btf_costs`.

use std::time::Instant;

use ferret_btf::{Btf, NameKind};

fn main() {
    for _ in 0..3 {
        let t = Instant::now();
        let btf = match Btf::vmlinux() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{e}");
                return;
            }
        };
        let parsed = t.elapsed();
        btf.find(NameKind::Struct, "task_struct");
        let structs = t.elapsed();
        btf.enum_constant("BPF_ANY");
        let enums = t.elapsed();
        println!(
            "load+parse {parsed:?}, struct index +{:?}, enum index +{:?}",
            structs - parsed,
            enums - structs
        );
    }
}
