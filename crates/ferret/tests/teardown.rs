//! End-to-end: however ferret stops, the kernel programs it loaded go
//! away, and a graceful stop still runs end probes and prints maps.

mod common;

use std::time::Duration;

use common::{Output, Tracer, bpf_prog_ids, bpf_prog_name, kernel_or_skip, wait_progs_released};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

const PROGRAM: &str = r#"
tracepoint:sched:sched_switch { @switches = count(); }
profile:hz:99 { @samples = count(); }
interval:ms:10 { @ticks = count(); }
end { printf("end ran\n"); }
"#;

/// Starts PROGRAM (plus `extra` probes), checks ferret holds one
/// `ferret_pN` program per probe, and returns it with their ids.
fn start(extra: &str, probes: usize) -> (Tracer, Vec<u32>) {
    let t = Tracer::start_prog(&["-q"], &format!("{PROGRAM}{extra}"), &[]);
    let ids = bpf_prog_ids(t.pid());
    let mut names: Vec<String> = ids.iter().filter_map(|&id| bpf_prog_name(id)).collect();
    names.sort();
    let expected: Vec<String> = (0..probes).map(|i| format!("ferret_p{i}")).collect();
    assert_eq!(names, expected, "programs held by ferret (ids {ids:?})");
    (t, ids)
}

#[track_caller]
fn assert_released(ids: &[u32]) {
    let left = wait_progs_released(ids, Duration::from_secs(2));
    let names: Vec<_> = left.iter().map(|&id| (id, bpf_prog_name(id))).collect();
    assert!(
        left.is_empty(),
        "still loaded 2 s after ferret ended: {names:?}"
    );
}

/// The end probe ran, then the maps printed, each with a positive count.
#[track_caller]
fn assert_graceful(out: &Output) {
    let stdout = out.ok();
    let maps = stdout
        .strip_prefix("end ran\n\n\n")
        .unwrap_or_else(|| panic!("end probe output, then two newlines: {stdout:?}"));
    let names: Vec<&str> = maps
        .lines()
        .map(|l| {
            let (name, n) = l.split_once(": ").unwrap_or_else(|| panic!("{l:?}"));
            assert!(n.parse::<u64>().unwrap() > 0, "{l:?}");
            name
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "maps print by name");
    for m in ["@samples", "@switches", "@ticks"] {
        assert!(names.contains(&m), "{m} missing: {stdout:?}");
    }
}

fn let_events_happen() {
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn after_exit() {
    kernel!();
    let (t, ids) = start("interval:ms:150 { exit(); }", 5);
    let out = t.finish();
    assert_graceful(&out);
    assert_released(&ids);
}

#[test]
fn after_sigint() {
    kernel!();
    let (t, ids) = start("", 4);
    let_events_happen();
    let out = t.stop(libc::SIGINT);
    assert_graceful(&out);
    assert_released(&ids);
}

#[test]
fn after_sigterm() {
    kernel!();
    let (t, ids) = start("", 4);
    let_events_happen();
    let out = t.stop(libc::SIGTERM);
    assert_graceful(&out);
    assert_released(&ids);
}

#[test]
fn after_sigkill() {
    kernel!();
    let (t, ids) = start("", 4);
    let_events_happen();
    let out = t.stop(libc::SIGKILL);
    assert_eq!(out.signal, Some(libc::SIGKILL), "{out:#?}");
    assert_eq!(out.stdout, "", "{out:#?}");
    assert_released(&ids);
}

#[test]
fn end_probes_print_after_exit_from_a_regular_probe() {
    kernel!();
    let out = common::run_prog(
        &["-q"],
        r#"interval:ms:20 { printf("tick\n"); exit(4); printf("after exit\n"); }
           end { printf("end ran\n"); }"#,
        &[],
    );
    assert_eq!(out.code, Some(4), "{out:#?}");
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout, "tick\nend ran\n\n\n");
}
