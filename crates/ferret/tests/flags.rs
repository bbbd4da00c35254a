//! End-to-end: command-line flags (-o, -q, -f json, -l, -lv, --dry-run, -d,
//! -V).

mod common;

use common::{TempDir, kernel_or_skip, run, run_prog};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

#[test]
fn version() {
    let out = run(&["-V"], None);
    assert_eq!(out.ok(), format!("ferret v{}\n", env!("CARGO_PKG_VERSION")));
    let out = run(&["--version"], None);
    assert_eq!(out.ok(), format!("ferret v{}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn dump_prints_instructions_and_stops() {
    let out = run_prog(&["-d"], r#"begin { printf("not run\n"); exit(); }"#, &[]);
    let stdout = out.ok();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("; begin (ferret_p0)"));
    assert_eq!(
        lines.next(),
        Some("   0: (7b) *(u64 *)(r10 -8) = r1"),
        "{stdout}"
    );
    assert!(stdout.contains("call bpf_ringbuf_output#130"), "{stdout}");
    assert!(stdout.ends_with(": (95) exit\n\n"), "{stdout}");
    assert!(!stdout.contains("not run"));
}

#[test]
fn dry_run_exits_zero_without_output() {
    kernel!();
    let out = run_prog(
        &["--dry-run"],
        r#"begin { printf("begin\n"); } tracepoint:sched:sched_switch { @ = count(); } end { printf("end\n"); }"#,
        &[],
    );
    assert_eq!(out.ok(), "");
}

#[test]
fn quiet_and_attached_message() {
    kernel!();
    let prog = r#"begin { printf("x\n"); exit(); }"#;
    let loud = run_prog(&[], prog, &[]);
    assert_eq!(loud.code, Some(0));
    assert_eq!(loud.stdout, "x\n\n\n");
    assert_eq!(loud.stderr, "Attached 1 probe\n");
    let quiet = run_prog(&["-q"], prog, &[]);
    assert_eq!(quiet.ok(), "x\n\n\n");
    let quiet = run_prog(&["--quiet"], prog, &[]);
    assert_eq!(quiet.ok(), "x\n\n\n");
}

#[test]
fn output_file() {
    kernel!();
    let dir = TempDir::new("outf");
    let file = dir.path("out.txt");
    let out = run_prog(
        &["-q", "-o", file.to_str().unwrap()],
        r#"begin { printf("to file\n"); @z = 1; exit(); }"#,
        &[],
    );
    assert_eq!(out.ok(), "");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "to file\n\n\n@z: 1\n"
    );
    // --output, and the Attached message still on stderr.
    let out = run_prog(
        &["--output", file.to_str().unwrap()],
        r#"begin { printf("again\n"); exit(); }"#,
        &[],
    );
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "Attached 1 probe\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "again\n\n\n");
}

#[test]
fn json_lines() {
    kernel!();
    let out = run_prog(
        &["-f", "json"],
        r#"begin { printf("x %d\n", 5); print((1, "a")); print(-2);
                   @m["k"] = 2; @s = stats(4); @c = count(); @h = hist(3); exit(); }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        r#"{"type": "attached_probes", "count": 1, "data": {"probes": 1}}
{"type": "printf", "data": "x 5\n"}
{"type": "value", "data": [1,"a"]}
{"type": "value", "data": -2}
{"type": "map", "data": {"@c": 1}}
{"type": "hist", "data": {"@h": [{"min": 2, "max": 3, "count": 1}]}}
{"type": "map", "data": {"@m": {"k": 2}}}
{"type": "stats", "data": {"@s": {"count": 1, "average": 4, "total": 4}}}
"#
    );
    let quiet = run_prog(
        &["-q", "-f", "json"],
        r#"begin { printf("q\n"); exit(); }"#,
        &[],
    );
    assert_eq!(quiet.ok(), "{\"type\": \"printf\", \"data\": \"q\\n\"}\n");
}

#[test]
fn bad_format_is_a_usage_error() {
    let out = run_prog(&["-f", "xml"], "begin { exit(); }", &[]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("xml"), "{out:#?}");
}

#[test]
fn list_tracepoints() {
    kernel!();
    let out = run(&["-l", "tracepoint:sched:*"], None);
    let stdout = out.ok();
    assert!(
        stdout.lines().any(|l| l == "tracepoint:sched:sched_switch"),
        "{stdout}"
    );
    assert!(
        stdout.lines().all(|l| l.starts_with("tracepoint:sched:")),
        "{stdout}"
    );
    assert!(!stdout.contains("    "), "fields without -v: {stdout}");
}

#[test]
fn list_verbose_shows_fields() {
    kernel!();
    for args in [
        &["-lv", "tracepoint:sched:sched_switch"][..],
        &["-l", "-v", "tracepoint:sched:sched_switch"][..],
        &["-v", "-l", "tracepoint:sched:sched_switch"][..],
    ] {
        let out = run(args, None);
        let stdout = out.ok();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"tracepoint:sched:sched_switch"),
            "{args:?}: {stdout}"
        );
        for field in [
            "    char prev_comm[16]",
            "    pid_t prev_pid",
            "    pid_t next_pid",
        ] {
            assert!(lines.contains(&field), "{args:?}: no {field:?} in {stdout}");
        }
    }
}
