//! The kernel matrix inside `cargo test --workspace`: under CI it boots
//! Debian's 6.1 and 6.12 kernels and runs the kernel-dependent tests in
//! them (`cargo xtask vm-test --kernel all`), so kprobes, fentry and older
//! verifiers are tested on every landing, not only on the host kernel.
//!
//! Outside CI it takes a quarter of an hour of emulation, so it runs when
//! `FERRET_VM_TEST=1` asks for it and otherwise says loudly that it did not.

use std::io::Write;
use std::process::Command;

fn enabled(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "true" || v == "1")
}

#[test]
fn kernel_dependent_tests_pass_in_debian_kernels() {
    if !enabled("CI") && !enabled("FERRET_VM_TEST") {
        // Straight to the stderr handle: libtest captures eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: kernel_matrix::kernel_dependent_tests_pass_in_debian_kernels: the Debian 6.1 \
             and 6.12 VMs run under CI=true or FERRET_VM_TEST=1 (or `cargo xtask vm-test`)"
        );
        return;
    }
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["vm-test", "--kernel", "all"])
        .status()
        .expect("running xtask vm-test");
    assert!(
        status.success(),
        "cargo xtask vm-test --kernel all: {status}"
    );
}
