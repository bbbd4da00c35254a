//! End-to-end: programs made of begin/end probes only, whose output is
//! fully deterministic: ordering, exit codes, printf, map printing.

mod common;

use common::{kernel_or_skip, run, run_prog};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

#[test]
fn begin_and_end_probes_run_in_order_and_the_program_exits_by_itself() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { printf("b1\n"); }
           end { printf("e1\n"); }
           BEGIN { printf("b2\n"); }
           END { printf("e2\n"); }
           begin { printf("b3\n"); }"#,
        &[],
    );
    assert_eq!(out.ok(), "b1\nb2\nb3\ne1\ne2\n\n\n");
}

#[test]
fn attached_message_goes_to_stderr() {
    kernel!();
    let out = run_prog(&[], r#"begin { printf("x\n"); } end { }"#, &[]);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "x\n\n\n");
    assert_eq!(out.stderr, "Attached 2 probes\n");
    let out = run_prog(&[], r#"BEGIN { exit(); }"#, &[]);
    assert_eq!(out.stderr, "Attached 1 probe\n");
}

#[test]
fn exit_code_and_exit_stops_later_begin_probes() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { printf("one\n"); exit(3); printf("not printed\n"); }
           begin { printf("never\n"); }
           end { printf("end\n"); }"#,
        &[],
    );
    assert_eq!(out.code, Some(3), "{out:#?}");
    assert_eq!(out.stdout, "one\nend\n\n\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn printf_conversions() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin {
             printf("%d %u %x %s %c %-8s| %05d %d %llu %lld\n",
                    42, 7, 255, "str", 65, "ab", 42, -17, 18446744073709551615, -5);
             printf("[%8s] [%-4d] [%4d] [%X] [%i] [%lx]\n", "right", 3, -3, 48879, -1, 4294967296);
             printf("%d %lld\n", 5000000000, 5000000000);
             printf("no args, 100%%\n");
             exit();
           }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        "42 7 ff str A ab      | 00042 -17 18446744073709551615 -5\n\
         [   right] [3   ] [  -3] [BEEF] [-1] [100000000]\n\
         705032704 5000000000\n\
         no args, 100%\n\
         \n\n"
    );
}

#[test]
fn string_escapes() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { printf("tab\there \"q\" back\\slash \x41\101|%s|\n", "in\targ"); exit(); }"#,
        &[],
    );
    assert_eq!(out.ok(), "tab\there \"q\" back\\slash AA|in\targ|\n\n\n");
}

#[test]
fn scalar_keyed_and_tuple_maps_at_exit() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin {
             @scalar = 42;
             @neg = -7;
             @keyed[3] = 30; @keyed[1] = 10; @keyed[2] = 20;
             @str["b"] = 2; @str["a"] = 1;
             @[1, "x"] = 5; @[2, "y"] = 6;
             @inc++; @inc++; @inc++;
             @acc += 5; @acc += 6;
             @dec = 10; @dec--; @dec -= 2;
           }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        "\n\n\
         @[1, x]: 5\n\
         @[2, y]: 6\n\
         @acc: 11\n\
         @dec: 7\n\
         @inc: 3\n\
         @keyed[1]: 10\n\
         @keyed[2]: 20\n\
         @keyed[3]: 30\n\
         @neg: -7\n\
         @scalar: 42\n\
         @str[a]: 1\n\
         @str[b]: 2\n"
    );
}

#[test]
fn pid_comm_tuple_key() {
    kernel!();
    let out = run_prog(&["-q"], r#"begin { @[pid, comm] = count(); }"#, &[]);
    // The begin probe runs in ferret's own context.
    assert_eq!(out.ok(), format!("\n\n@[{}, ferret]: 1\n", out_pid(&out)));
}

/// The pid in a `@[pid, ...]` line (ferret's own, not known before it ran).
fn out_pid(out: &common::Output) -> String {
    out.stdout
        .trim_start()
        .strip_prefix("@[")
        .and_then(|s| s.split(',').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn aggregations_at_exit() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin {
             @c = count(); @c = count(); @c = count();
             @s = sum(5); @s = sum(7); @s = sum(-2);
             @mn = min(3); @mn = min(-2); @mn = min(9);
             @mx = max(4); @mx = max(11); @mx = max(-1);
             @a = avg(3); @a = avg(4);
             @an = avg(-3); @an = avg(-5);
             @st = stats(2); @st = stats(4); @st = stats(7);
             @kc["x"] = count(); @kc["y"] = count(); @kc["y"] = count();
           }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        "\n\n\
         @a: 3\n\
         @an: -4\n\
         @c: 3\n\
         @kc[x]: 1\n\
         @kc[y]: 2\n\
         @mn: -2\n\
         @mx: 11\n\
         @s: 10\n\
         @st: { .count = 3, .average = 4, .total = 13 }\n"
    );
}

#[test]
fn hist_reference_fixture() {
    kernel!();
    let out = run_prog(
        &["-q"],
        "begin { @ = hist(-1); @ = hist(2); @ = hist(3); @ = hist(7); @ = hist(20); }",
        &[],
    );
    assert_eq!(
        out.ok(),
        "\n\n\
@:
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0]                    0 |                                                    |
[1]                    0 |                                                    |
[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[8, 16)                0 |                                                    |
[16, 32)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

"
    );
}

#[test]
fn lhist_reference_fixture() {
    kernel!();
    let out = run_prog(
        &["-q"],
        "begin { @ = lhist(2, 0, 10, 2); @ = lhist(3, 0, 10, 2); @ = lhist(7, 0, 10, 2);
                 @ = lhist(-1, 0, 10, 2); @ = lhist(11, 0, 10, 2); }",
        &[],
    );
    assert_eq!(
        out.ok(),
        "\n\n\
@:
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0, 2)                 0 |                                                    |
[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 6)                 0 |                                                    |
[6, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[8, 10)                0 |                                                    |
[10, ...)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

"
    );
}

#[test]
fn hist_suffixes_and_keyed_histograms_sorted_by_total() {
    kernel!();
    let out = run_prog(
        &["-q"],
        "begin { @h = hist(0); @h = hist(1); @h = hist(1); @h = hist(1024); @h = hist(1500);
                 @h = hist(1048576);
                 @k[7] = lhist(5, 0, 100, 10); @k[7] = lhist(15, 0, 100, 10);
                 @k[3] = lhist(250, 0, 100, 10); }",
        &[],
    );
    assert_eq!(out.ok(), include_str!("fixtures/hist_suffixes.txt"));
}

#[test]
fn print_clear_zero_delete() {
    kernel!();
    // Each print reads the map when user space handles the event, so every
    // change comes in a later begin probe (they run one after another).
    let out = run_prog(
        &["-q"],
        r#"begin { @m[1] = 10; @m[2] = 20; @m[3] = 5; print(@m); }
           begin { print(@m, 2); }
           begin { print(@m, 2, 5); }
           begin { delete(@m, 2); print(@m); }
           begin { delete(@m, 3); zero(@m); }
           begin { print(@m); }
           begin { @gone[1] = 1; clear(@gone); }
           begin { @x = 7; print(@x); }
           begin { @x++; @x += 10; }
           begin { print(@x); }
           begin { printf("done\n"); }"#,
        &[],
    );
    assert_eq!(
        out.ok(),
        "@m[3]: 5\n@m[1]: 10\n@m[2]: 20\n\
         @m[1]: 10\n@m[2]: 20\n\
         @m[1]: 2\n@m[2]: 4\n\
         @m[3]: 5\n@m[1]: 10\n\
         @m[1]: 0\n\
         @x: 7\n\
         @x: 18\n\
         done\n\
         \n\n\
         @m[1]: 0\n\
         @x: 18\n"
    );
}

/// Keyless aggregations live in a one-slot per-CPU array whose slot always
/// exists: one never updated must not print at exit, `print()` shows its
/// zero, and `delete`/`clear` empty it.
#[test]
fn keyless_aggregations_that_were_never_updated() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { print(@never); if (0) { @never = count(); } }
           begin { @c = count(); @c = count(); delete(@c); print(@c); }
           begin { @s = sum(3); @m = min(4); clear(@m); @a = avg(6); }
           begin { printf("%d\n", @s); }"#,
        &[],
    );
    assert_eq!(out.ok(), "@never: 0\n@c: 0\n3\n\n\n@a: 6\n@s: 3\n");
}

#[test]
fn print_value() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { print(5); print(-3); print("text"); print((1, "two")); exit(); }"#,
        &[],
    );
    assert_eq!(out.ok(), "5\n-3\ntext\n(1, two)\n\n\n");
}

#[test]
fn positional_parameters() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { printf("%d %s %d\n", $1, str($2), $#); exit(); }"#,
        &["41", "word"],
    );
    assert_eq!(out.ok(), "41 word 2\n\n\n");
}

#[test]
fn script_file_and_stdin() {
    kernel!();
    let dir = common::TempDir::new("file");
    let script = dir.path("prog.bt");
    std::fs::write(
        &script,
        "#!/usr/bin/env ferret\nbegin { printf(\"from %s\\n\", str($1)); exit(); }\n",
    )
    .unwrap();
    let out = run(&["-q", script.to_str().unwrap(), "file"], None);
    assert_eq!(out.ok(), "from file\n\n\n");
    let out = run(
        &["-q", "-", "stdin"],
        Some("begin { printf(\"from %s\\n\", str($1)); exit(); }"),
    );
    assert_eq!(out.ok(), "from stdin\n\n\n");
}
