//! End-to-end: the structure of a program around its probes: the C
//! preprocessor, config blocks and BPFTRACE_* variables, macros, block
//! expressions, positional and named parameters, map declarations.
//! Events come from the test's own thread (filtered by its tid).

mod common;

use common::{TempDir, Tracer, gettid, kernel_or_skip, open_path, run_env, run_prog};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

fn tid() -> String {
    gettid().to_string()
}

#[test]
fn preprocessor_defines_and_btf_conditionals() {
    kernel!();
    let dir = TempDir::new("cpp");
    let target = dir.path("cpp-file");
    let script = dir.path("prog.bt");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env ferret
#include <linux/fcntl.h>
#ifndef BPFTRACE_HAVE_BTF
#error needs BTF
#else
#define ACCESS_MODE 3
#define SAME(a, b) (str(a) == str(b))
#endif
#if defined(ACCESS_MODE) && ACCESS_MODE > 2
tracepoint:syscalls:sys_enter_openat /tid == $1/ {
  if (SAME(args.filename, $2)) {
    printf("%s %d\n", str(args.filename), args.flags & ACCESS_MODE);
    exit();
  }
}
#endif
"#,
    )
    .unwrap();
    let t = Tracer::start(&[
        "-q",
        script.to_str().unwrap(),
        &tid(),
        target.to_str().unwrap(),
    ]);
    open_path(&target);
    let out = t.finish();
    assert_eq!(out.ok(), format!("{} 0\n\n\n", target.display()));
}

#[test]
fn skipped_includes_are_reported_with_verbose() {
    kernel!();
    let out = run_prog(&["-v"], "#include <linux/sched.h>\nbegin { exit(); }", &[]);
    assert!(
        out.stderr
            .contains("skipped #include <linux/sched.h>: kernel types come from BTF\n"),
        "{out:#?}"
    );
}

#[test]
fn macros_with_variables_maps_and_expressions() {
    kernel!();
    let dir = TempDir::new("mac");
    let target = dir.path("macro-file");
    let t = Tracer::start_prog(
        &["-q"],
        r#"macro is_target(path) { str(path) == str($2) }
           macro bump(@m, $n) { @m[$n] = count(); $n += 1; $n }
           macro twice(x) { x; x; }
           tracepoint:syscalls:sys_enter_openat /tid == $1/ {
             if (is_target(args.filename)) {
               $k = 10;
               $r = bump(@opens, $k);
               twice({ printf("hi ") });
               printf("%d %d\n", $k, $r);
               exit();
             }
           }"#,
        &[&tid(), target.to_str().unwrap()],
    );
    open_path(&target);
    let out = t.finish();
    assert_eq!(out.ok(), "hi hi 11 11\n\n\n@opens[10]: 1\n");
}

#[test]
fn block_expressions_have_their_own_scope() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { $y = 1; $x = { let $y = 2; $y * 3 }; print(($x, $y)); exit(); }"#,
        &[],
    );
    assert_eq!(out.ok(), "(6, 1)\n\n\n");
}

#[test]
fn positional_and_named_parameters() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin {
             printf("%d|%s|%d|%s|%d\n", $1, str($2), $3, str($4), $#);
             printf("%s|%s\n", str($1), str($2 + 1));
             print((getopt("aa", 1), getopt("bb"), getopt("cc", "x"), getopt("dd", 5)));
           }
           interval:ms:$1 { printf("tick\n"); exit(); }"#,
        &["7", "word", "--", "--aa=20", "--bb"],
    );
    assert_eq!(out.ok(), "7|word|0||2\n7|ord\n(20, true, x, 5)\ntick\n\n\n");
}

#[test]
fn max_map_keys_and_declared_maps_on_real_events() {
    kernel!();
    let dir = TempDir::new("full");
    let t = Tracer::start_prog(
        &["-q"],
        r#"config = { max_map_keys = 2 }
           let @lru = lruhash(2);
           let @big = hash(16);
           let @small = hash(3);
           tracepoint:syscalls:sys_enter_openat /tid == $1/ {
             @keys[nsecs] = 1; @lru[nsecs] = 1; @big[nsecs] = 1; @small[nsecs] = 1;
           }"#,
        &[&tid()],
    );
    for i in 0..5 {
        open_path(&dir.path(&format!("f{i}")));
    }
    let out = t.stop(libc::SIGINT);
    let count = |map: &str| {
        out.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{map}[")))
            .count()
    };
    assert_eq!(count("@keys"), 2, "{out:#?}");
    assert!(count("@lru") <= 2, "{out:#?}");
    assert_eq!(count("@big"), 5, "{out:#?}");
    assert_eq!(count("@small"), 3, "{out:#?}");
    assert!(
        out.stderr
            .contains("warning: map @keys is full: 3 updates were dropped\n"),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(
            "= help: raise max_map_keys in a config block, or declare the map bigger: 'let @keys = hash(4);'"
        ),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains("warning: map @small is full: 2 updates were dropped\n"),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains("= help: declare it bigger: 'let @small = hash(6);'"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("@lru is full"), "{out:#?}");
    assert!(!out.stderr.contains("@big is full"), "{out:#?}");
}

#[test]
fn max_strlen_and_trailer() {
    kernel!();
    let dir = TempDir::new("trunc");
    let target = dir.path("a-long-file-name");
    let t = Tracer::start_prog(
        &["-q"],
        r#"config = { max_strlen = 8; str_trunc_trailer = "~" }
           tracepoint:syscalls:sys_enter_openat /tid == $1/ {
             printf("%s|%s|%s\n", str(args.filename), str(args.filename, 3), "not cut");
             exit();
           }"#,
        &[&tid()],
    );
    open_path(&target);
    let out = t.finish();
    let path = target.to_str().unwrap();
    assert_eq!(
        out.ok(),
        format!("{}~|{}|not cut\n\n\n", &path[..8], &path[..3])
    );
}

#[test]
fn print_maps_on_exit_and_environment_precedence() {
    kernel!();
    let prog = "config = { print_maps_on_exit = false } begin { @x = 1; @y[2] = 3; }";
    let out = run_env(&["-q", "-e", prog], None, &[]);
    assert_eq!(out.ok(), "\n\n");
    let out = run_env(
        &["-q", "-e", prog],
        None,
        &[("BPFTRACE_PRINT_MAPS_ON_EXIT", "1")],
    );
    assert_eq!(out.ok(), "\n\n@x: 1\n@y[2]: 3\n");
}

#[test]
fn perf_rb_pages_sizes_the_ring_buffer() {
    kernel!();
    let prog = |pages: u32| {
        format!(
            "config = {{ perf_rb_pages = {pages} }}
             begin {{ $i = 0; while ($i < 1000) {{ printf(\"%d\\n\", $i); $i++; }} }}"
        )
    };
    let small = run_prog(&["-q"], &prog(1), &[]);
    assert!(small.stderr.starts_with("Lost "), "{small:#?}");
    assert!(small.stdout.lines().count() < 1000, "{small:#?}");
    let big = run_prog(&["-q"], &prog(64), &[]);
    assert_eq!(big.stderr, "", "{big:#?}");
    assert_eq!(big.stdout.lines().filter(|l| !l.is_empty()).count(), 1000);
}

#[test]
fn missing_probes_warn_ignore_and_error() {
    kernel!();
    let prog = |mode: &str| {
        format!(
            "config = {{ missing_probes = {mode} }}
             tracepoint:ferret_nope:* {{ }}
             begin {{ printf(\"ran\\n\"); }}"
        )
    };
    let out = run_prog(&["-q"], &prog("warn"), &[]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "ran\n\n\n"));
    assert!(
        out.stderr
            .contains("warning: no tracepoint matches tracepoint:ferret_nope:*\n"),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains("warning: this probe has no valid attach points\n"),
        "{out:#?}"
    );
    let out = run_prog(&["-q"], &prog("ignore"), &[]);
    assert_eq!(out.ok(), "ran\n\n\n");
    assert_eq!(out.stderr, "");
    let out = run_prog(&["-q"], &prog("error"), &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("error: no tracepoint matches tracepoint:ferret_nope:*\n"),
        "{out:#?}"
    );
}

/// The frame lines of every stack key in a map printed at exit.
fn stack_frames(stdout: &str) -> Vec<String> {
    let mut frames = Vec::new();
    let mut inside = false;
    for line in stdout.lines() {
        if line == "@[" {
            inside = true;
        } else if line.starts_with("]: ") {
            inside = false;
        } else if inside {
            frames.push(line.to_owned());
        }
    }
    frames
}

#[test]
fn stack_mode_perf_and_raw() {
    kernel!();
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    for (mode, env) in [("perf", None), ("bpftrace", Some("raw"))] {
        let prog = format!(
            "config = {{ stack_mode = {mode} }}
             profile:hz:997 {{ @[kstack(3)] = count(); }}
             interval:ms:300 {{ exit(); }}"
        );
        let vars: Vec<(&str, &str)> = env
            .map(|m| ("BPFTRACE_STACK_MODE", m))
            .into_iter()
            .collect();
        let out = run_env(&["-q", "-e", &prog], None, &vars);
        assert_eq!(out.code, Some(0), "{out:#?}");
        let frames = stack_frames(&out.stdout);
        assert!(!frames.is_empty(), "no kernel stacks: {out:#?}");
        for f in &frames {
            match env.unwrap_or(mode) {
                // `\t<address> symbol+offset`
                "perf" => {
                    let (addr, sym) = f
                        .strip_prefix('\t')
                        .and_then(|r| r.split_once(' '))
                        .unwrap_or_else(|| panic!("perf frame {f:?}"));
                    assert!(is_hex(addr) && sym.contains('+'), "perf frame {f:?}");
                }
                _ => assert!(is_hex(f), "raw frame {f:?}"),
            }
        }
    }
}
