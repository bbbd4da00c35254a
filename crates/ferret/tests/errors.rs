//! Bad input, as the ferret binary reports it: the exact text on stderr
//! (file:line:col, the source line with the span marked, what was expected,
//! a fix where one can be told) and exit status 1, with nothing on stdout.
//!
//! Programs that resolve tracepoints read tracefs, so these run as root on
//! a kernel with the syscalls tracepoints; without root the usage and
//! syntax cases still run and the others are skipped.

use std::process::{Command, Output};

mod common;

fn ferret(args: &[&str]) -> Output {
    Command::new(common::ferret_path())
        .args(args)
        .env_remove("BPFTRACE_MAX_STRLEN")
        .env_remove("BPFTRACE_MAX_MAP_KEYS")
        .output()
        .expect("ferret runs")
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `-e program` and compares stderr in full.
fn check(program: &str, stderr: &str) {
    if ["tracepoint:", "kprobe:"]
        .iter()
        .any(|p| program.contains(p))
        && !root()
    {
        eprintln!("skipped: reading tracefs needs root");
        return;
    }
    check_args(&["-e", program], stderr);
}

fn check_args(args: &[&str], stderr: &str) {
    let out = ferret(args);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        stderr,
        "stderr of ferret {args:?}"
    );
    assert_eq!(out.status.code(), Some(1), "exit status of ferret {args:?}");
    assert!(
        out.stdout.is_empty(),
        "stdout of ferret {args:?}: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn missing_semicolon_between_statements() {
    check(
        r#"begin { printf("a") printf("b"); }"#,
        r#"stdin:1:21: error: expected ';' but found identifier 'printf'
  |
1 | begin { printf("a") printf("b"); }
  |                     ^^^^^^ expected ';'
"#,
    );
}

#[test]
fn missing_closing_brace() {
    check(
        r#"begin { printf("a");"#,
        r#"stdin:1:7: error: expected '}' but found end of file
  |
1 | begin { printf("a");
  |       ^ this '{' is not closed
  |
  = help: add '}' to close the block
"#,
    );
}

#[test]
fn unterminated_string() {
    check(
        r#"begin { printf("abc); }"#,
        r#"stdin:1:16: error: unterminated string
  |
1 | begin { printf("abc); }
  |                ^^^^^^^^ this string is never closed
  |
  = help: close it with '"' on the same line
"#,
    );
}

#[test]
fn unterminated_comment() {
    check(
        r#"begin { /* x }"#,
        r#"stdin:1:9: error: unterminated comment
  |
1 | begin { /* x }
  |         ^^ this comment is never closed
  |
  = help: close it with '*/'
"#,
    );
}

#[test]
fn bad_character() {
    check(
        r#"begin { @x = 1 ` 2; }"#,
        r#"stdin:1:16: error: invalid character '`'
  |
1 | begin { @x = 1 ` 2; }
  |                ^ not valid here
"#,
    );
}

#[test]
fn single_quoted_string() {
    check(
        r#"begin { printf('a'); }"#,
        r#"stdin:1:16: error: strings are written in double quotes, not single quotes
  |
1 | begin { printf('a'); }
  |                ^^^ single-quoted
  |
  = help: write "a"
"#,
    );
}

#[test]
fn assignment_in_predicate() {
    check(
        r#"tracepoint:syscalls:sys_enter_openat /pid = 1/ { }"#,
        r#"stdin:1:43: error: expected '/' but found '='
  |
1 | tracepoint:syscalls:sys_enter_openat /pid = 1/ { }
  |                                           ^ expected '/' to end the predicate
  |
  = help: did you mean '=='?
"#,
    );
}

#[test]
fn number_too_large() {
    check(
        r#"begin { @x = 99999999999999999999999; }"#,
        r#"stdin:1:14: error: integer literal '99999999999999999999999' is too large for 64 bits
  |
1 | begin { @x = 99999999999999999999999; }
  |              ^^^^^^^^^^^^^^^^^^^^^^^ does not fit in 64 bits
  |
  = help: the largest integer is 18446744073709551615
"#,
    );
}

#[test]
fn empty_program() {
    check(
        r#""#,
        r#"stdin:1:1: error: no probes in program
  |
1 | 
  | ^ expected a probe
  |
  = help: a program is one or more probes, like 'begin { printf("hello\n"); }'
"#,
    );
}

#[test]
fn probe_without_body() {
    check(
        r#"tracepoint:syscalls:sys_enter_openat"#,
        r#"stdin:1:1: error: expected '{' but found end of file
  |
1 | tracepoint:syscalls:sys_enter_openat
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ this probe has no body
  |
  = help: add a block, like '{ printf("hit\n"); }'
"#,
    );
}

#[test]
fn missing_close_paren() {
    check(
        r#"begin { printf("x"; }"#,
        r#"stdin:1:19: error: expected ')' but found ';'
  |
1 | begin { printf("x"; }
  |                   ^ expected ')'
"#,
    );
}

#[test]
fn stray_semicolon_after_probe() {
    check(
        r#"begin { }; end { }"#,
        r#"stdin:1:10: error: expected an attach point like 'begin' or 'kprobe:f' but found ';'
  |
1 | begin { }; end { }
  |          ^ expected a probe
  |
  = help: a probe's block needs no ';' after it
"#,
    );
}

#[test]
fn stray_closing_brace() {
    check(
        r#"begin { } }"#,
        r#"stdin:1:11: error: expected an attach point like 'begin' or 'kprobe:f' but found '}'
  |
1 | begin { } }
  |           ^ expected a probe
  |
  = help: this '}' closes nothing: remove it
"#,
    );
}

#[test]
fn unknown_function() {
    check(
        r#"begin { prinft("x"); }"#,
        r#"stdin:1:9: error: unknown function 'prinft'
  |
1 | begin { prinft("x"); }
  |         ^^^^^^ not a known function
  |
  = help: did you mean 'printf'?
"#,
    );
}

#[test]
fn unknown_map_function() {
    check(
        r#"begin { @s = summ(1); }"#,
        r#"stdin:1:14: error: unknown function 'summ'
  |
1 | begin { @s = summ(1); }
  |              ^^^^ not a known function
  |
  = help: did you mean 'sum'?
"#,
    );
}

#[test]
fn unknown_builtin() {
    check(
        r#"begin { printf("%d\n", pdi); }"#,
        r#"stdin:1:24: error: unknown identifier 'pdi'
  |
1 | begin { printf("%d\n", pdi); }
  |                        ^^^ not a builtin
  |
  = help: did you mean 'pid'?
"#,
    );
}

#[test]
fn unknown_probe_type() {
    check(
        r#"tracepont:syscalls:sys_enter_openat { }"#,
        r#"stdin:1:1: error: unknown probe type 'tracepont'
  |
1 | tracepont:syscalls:sys_enter_openat { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not a probe type
  |
  = help: did you mean 'tracepoint'?
"#,
    );
}

#[test]
fn tracepoint_not_found() {
    check(
        r#"tracepoint:syscalls:sys_enter_opnat { }"#,
        r#"stdin:1:1: error: tracepoint not found: syscalls:sys_enter_opnat
  |
1 | tracepoint:syscalls:sys_enter_opnat { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ no such tracepoint
  |
  = help: did you mean 'tracepoint:syscalls:sys_enter_openat'?
"#,
    );
}

#[test]
fn tracepoint_category_not_found() {
    check(
        r#"tracepoint:nosuchcat:foo { }"#,
        r#"stdin:1:1: error: tracepoint not found: nosuchcat:foo
  |
1 | tracepoint:nosuchcat:foo { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^ no such tracepoint
  |
  = help: list the categories with: ferret -l 'tracepoint:*'
"#,
    );
}

#[test]
fn tracepoint_without_event() {
    check(
        r#"tracepoint:syscalls { }"#,
        r#"stdin:1:1: error: invalid tracepoint 'tracepoint:syscalls'
  |
1 | tracepoint:syscalls { }
  | ^^^^^^^^^^^^^^^^^^^ expected tracepoint:CATEGORY:EVENT
  |
  = help: for example tracepoint:syscalls:sys_enter_openat
"#,
    );
}

#[test]
fn wildcard_matches_nothing() {
    check(
        r#"tracepoint:syscalls:sys_enter_zzz* { }"#,
        r#"stdin:1:1: error: no tracepoint matches tracepoint:syscalls:sys_enter_zzz*
  |
1 | tracepoint:syscalls:sys_enter_zzz* { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ matches nothing
  |
  = help: list them with: ferret -l 'tracepoint:syscalls:*'
"#,
    );
}

#[test]
fn unknown_tracepoint_field() {
    check(
        r#"tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args.filname)); }"#,
        r#"stdin:1:64: error: tracepoint:syscalls:sys_enter_openat has no field 'filname'
  |
1 | tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args.filname)); }
  |                                                                ^^^^^^^ unknown field
  |
  = help: did you mean 'filename'?
"#,
    );
}

#[test]
fn args_without_field() {
    // `args` alone is the whole record, a struct: not an integer.
    check(
        r#"tracepoint:syscalls:sys_enter_openat { printf("%d\n", args); }"#,
        r#"stdin:1:55: error: printf: %d expects an integer, found struct _tracepoint_syscalls_sys_enter_openat
  |
1 | tracepoint:syscalls:sys_enter_openat { printf("%d\n", args); }
  |                                                       ^^^^ wrong type
  |
  = help: use %s to print it
"#,
    );
    check(
        r#"begin { printf("%d\n", args); }"#,
        r#"stdin:1:24: error: 'args' is not available in begin probes
  |
1 | begin { printf("%d\n", args); }
  |                        ^^^^ no arguments here
"#,
    );
}

#[test]
fn args_in_begin() {
    check(
        r#"begin { printf("%d\n", args.x); }"#,
        r#"stdin:1:29: error: 'args' is not available in begin probes
  |
1 | begin { printf("%d\n", args.x); }
  |                             ^ no arguments here
"#,
    );
}

#[test]
fn arg0_in_tracepoint() {
    check(
        r#"tracepoint:syscalls:sys_enter_openat { printf("%d\n", arg0); }"#,
        r#"stdin:1:55: error: 'arg0' is not available in tracepoint probes
  |
1 | tracepoint:syscalls:sys_enter_openat { printf("%d\n", arg0); }
  |                                                       ^^^^ not available here
  |
  = help: tracepoint arguments are read with args.FIELD
"#,
    );
}

#[test]
fn retval_in_enter_tracepoint() {
    check(
        r#"tracepoint:syscalls:sys_enter_openat { printf("%d\n", retval); }"#,
        r#"stdin:1:55: error: 'retval' is not available in tracepoint probes
  |
1 | tracepoint:syscalls:sys_enter_openat { printf("%d\n", retval); }
  |                                                       ^^^^^^ not available here
  |
  = help: a syscall's return value is args.ret in tracepoint:syscalls:sys_exit_openat
"#,
    );
}

#[test]
fn retval_in_exit_tracepoint() {
    check(
        r#"tracepoint:syscalls:sys_exit_openat { printf("%d\n", retval); }"#,
        r#"stdin:1:54: error: 'retval' is not available in tracepoint probes
  |
1 | tracepoint:syscalls:sys_exit_openat { printf("%d\n", retval); }
  |                                                      ^^^^^^ not available here
  |
  = help: the syscall's return value is args.ret
"#,
    );
}

/// On a kernel without kprobes, the error says so and names a tracepoint
/// to use instead where one sees the same call. Where kprobes exist the
/// same program attaches.
fn check_kprobe(program: &str, stderr: &str) {
    if root() && common::kprobes_available() {
        let out = ferret(&["--dry-run", "-e", program]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        return;
    }
    check(program, stderr);
}

#[test]
fn kprobe_on_syscall() {
    check_kprobe(
        r#"kprobe:do_sys_openat2 { @x = count(); }"#,
        r#"stdin:1:1: error: kprobes are not available on this kernel (CONFIG_KPROBES is off)
  |
1 | kprobe:do_sys_openat2 { @x = count(); }
  | ^^^^^^^^^^^^^^^^^^^^^ kernel dynamic probe
  |
  = help: the syscall has a tracepoint: use 'tracepoint:syscalls:sys_enter_openat2'
"#,
    );
}

#[test]
fn kretprobe_on_syscall() {
    check_kprobe(
        r#"kr:vfs_read { @x = count(); }"#,
        r#"stdin:1:1: error: kprobes are not available on this kernel (CONFIG_KPROBES is off)
  |
1 | kr:vfs_read { @x = count(); }
  | ^^^^^^^^^^^ kernel dynamic probe
  |
  = help: the syscall has a tracepoint: use 'tracepoint:syscalls:sys_exit_read'
"#,
    );
}

#[test]
fn kprobe_elsewhere() {
    check_kprobe(
        r#"kprobe:tcp_sendmsg { @x = count(); }"#,
        r#"stdin:1:1: error: kprobes are not available on this kernel (CONFIG_KPROBES is off)
  |
1 | kprobe:tcp_sendmsg { @x = count(); }
  | ^^^^^^^^^^^^^^^^^^ kernel dynamic probe
  |
  = help: use a tracepoint where one covers the event (ferret -l 'tracepoint:*')
"#,
    );
}

#[test]
fn kretprobe_with_an_offset() {
    check(
        r#"kretprobe:vfs_read+8 { }"#,
        r#"stdin:1:1: error: a kretprobe has no offset: 'kretprobe:vfs_read+8'
  |
1 | kretprobe:vfs_read+8 { }
  | ^^^^^^^^^^^^^^^^^^^^ offset not allowed
  |
  = help: a return probe fires when the function returns; use kprobe:FUNCTION+OFFSET for a point inside it
"#,
    );
}

#[test]
fn kprobe_malformed() {
    check(
        r#"kprobe:vfs_*+8 { }"#,
        r#"stdin:1:1: error: invalid kprobe 'kprobe:vfs_*+8': an offset needs one function, not a wildcard
  |
1 | kprobe:vfs_*+8 { }
  | ^^^^^^^^^^^^^^ here
  |
  = help: write it as kprobe:vfs_read, kprobe:vfs_*, kprobe:vfs_read+16 or kprobe:MODULE:FUNCTION
"#,
    );
}

/// A function the kernel does not have: did you mean (where kprobes
/// exist; elsewhere the kernel's lack of kprobes is the error).
#[test]
fn kprobe_unknown_function() {
    if !(root() && common::kprobes_available()) {
        return;
    }
    check(
        r#"kprobe:vfs_raed { }"#,
        r#"stdin:1:1: error: no kernel function kprobe:vfs_raed
  |
1 | kprobe:vfs_raed { }
  | ^^^^^^^^^^^^^^^ no such function
  |
  = help: did you mean 'kprobe:vfs_read'?
"#,
    );
}

#[test]
fn interval_unknown_unit() {
    check(
        r#"interval:xs:1 { }"#,
        r#"stdin:1:1: error: invalid interval probe 'interval:xs:1': unknown unit 'xs'
  |
1 | interval:xs:1 { }
  | ^^^^^^^^^^^^^ here
  |
  = help: write it as interval:s:1, interval:ms:100, interval:hz:10 or interval:1s
"#,
    );
}

#[test]
fn interval_zero() {
    check(
        r#"interval:s:0 { }"#,
        r#"stdin:1:1: error: invalid interval probe 'interval:s:0': the rate must be greater than zero
  |
1 | interval:s:0 { }
  | ^^^^^^^^^^^^ here
  |
  = help: write it as interval:s:1, interval:ms:100, interval:hz:10 or interval:1s
"#,
    );
}

#[test]
fn profile_bad_rate() {
    check(
        r#"profile:hz:abc { }"#,
        r#"stdin:1:1: error: invalid profile probe 'profile:hz:abc': 'abc' is not a positive integer
  |
1 | profile:hz:abc { }
  | ^^^^^^^^^^^^^^ here
  |
  = help: write it as profile:hz:99, profile:ms:10 or profile:s:1
"#,
    );
}

#[test]
fn printf_too_few_arguments() {
    check(
        r#"begin { printf("%d %d\n", 1); }"#,
        r#"stdin:1:9: error: printf: the format has 2 conversions but 1 argument was given
  |
1 | begin { printf("%d %d\n", 1); }
  |         ^^^^^^^^^^^^^^^^^^^^ mismatched arguments
  |
  = help: give one argument per conversion; write %% for a literal '%'
"#,
    );
}

#[test]
fn printf_too_many_arguments() {
    check(
        r#"begin { printf("%d\n", 1, 2); }"#,
        r#"stdin:1:9: error: printf: the format has 1 conversion but 2 arguments were given
  |
1 | begin { printf("%d\n", 1, 2); }
  |         ^^^^^^^^^^^^^^^^^^^^ mismatched arguments
  |
  = help: give one argument per conversion; write %% for a literal '%'
"#,
    );
}

#[test]
fn printf_string_for_integer() {
    check(
        r#"begin { printf("%d\n", comm); }"#,
        r#"stdin:1:24: error: printf: %d expects an integer, found string[16]
  |
1 | begin { printf("%d\n", comm); }
  |                        ^^^^ wrong type
  |
  = help: use %s to print it
"#,
    );
}

#[test]
fn printf_float_conversion() {
    check(
        r#"begin { printf("a\n\t%-5.2f\n", 1); }"#,
        r#"stdin:1:16: error: printf: unsupported conversion '%-5.2f'
  |
1 | begin { printf("a\n\t%-5.2f\n", 1); }
  |                ^^^^^^^^^^^^^^^ in this format
  |
  = help: ferret prints integers and strings: use %d, %u, %x, %o, %c, %s, %p or %r; write %% for a literal '%'
"#,
    );
}

#[test]
fn printf_non_literal_format() {
    check(
        r#"begin { $f = "x"; printf($f); }"#,
        r#"stdin:1:26: error: printf's first argument must be a string literal
  |
1 | begin { $f = "x"; printf($f); }
  |                          ^^ not a format string
  |
  = help: write the format inline: printf("%s\n", $var)
"#,
    );
}

#[test]
fn printf_no_arguments() {
    check(
        r#"begin { printf(); }"#,
        r#"stdin:1:9: error: printf() takes 1 to 64 arguments, 0 given
  |
1 | begin { printf(); }
  |         ^^^^^^^^ wrong number of arguments
  |
  = help: usage: printf("format", args...)
"#,
    );
}

#[test]
fn aggregation_not_assigned() {
    check(
        r#"begin { count(); }"#,
        r#"stdin:1:9: error: count() must be assigned to a map
  |
1 | begin { count(); }
  |         ^^^^^ not assigned
  |
  = help: write @name = count(...)
"#,
    );
}

#[test]
fn hist_argument_count() {
    check(
        r#"begin { @h = hist(); }"#,
        r#"stdin:1:14: error: hist() takes 1 or 2 arguments, 0 given
  |
1 | begin { @h = hist(); }
  |              ^^^^^^ wrong number of arguments
  |
  = help: usage: @x = hist(value[, k])
"#,
    );
}

#[test]
fn lhist_argument_count() {
    check(
        r#"begin { @h = lhist(1, 2); }"#,
        r#"stdin:1:14: error: lhist() takes 4 arguments, 2 given
  |
1 | begin { @h = lhist(1, 2); }
  |              ^^^^^^^^^^^ wrong number of arguments
  |
  = help: usage: @x = lhist(value, min, max, step)
"#,
    );
}

#[test]
fn str_argument_count() {
    check(
        r#"begin { $s = str(); }"#,
        r#"stdin:1:14: error: str() takes 1 or 2 arguments, 0 given
  |
1 | begin { $s = str(); }
  |              ^^^^^ wrong number of arguments
  |
  = help: usage: str(pointer[, length])
"#,
    );
}

#[test]
fn exit_argument_count() {
    check(
        r#"begin { exit(1, 2, 3); }"#,
        r#"stdin:1:9: error: exit() takes 0 or 1 arguments, 3 given
  |
1 | begin { exit(1, 2, 3); }
  |         ^^^^^^^^^^^^^ wrong number of arguments
  |
  = help: usage: exit() or exit(code)
"#,
    );
}

#[test]
fn lhist_zero_step() {
    check(
        r#"begin { @h = lhist(1, 0, 100, 0); }"#,
        r#"stdin:1:31: error: lhist step must be greater than zero
  |
1 | begin { @h = lhist(1, 0, 100, 0); }
  |                               ^ invalid step
"#,
    );
}

#[test]
fn lhist_max_below_min() {
    check(
        r#"begin { @h = lhist(1, 100, 0, 10); }"#,
        r#"stdin:1:28: error: lhist max must be greater than min
  |
1 | begin { @h = lhist(1, 100, 0, 10); }
  |                            ^ invalid range
"#,
    );
}

#[test]
fn hist_k_out_of_range() {
    check(
        r#"begin { @h = hist(1, 10); }"#,
        r#"stdin:1:22: error: hist precision k must be between 0 and 5
  |
1 | begin { @h = hist(1, 10); }
  |                      ^^ out of range
"#,
    );
}

#[test]
fn hist_of_string() {
    check(
        r#"begin { @h = hist(comm); }"#,
        r#"stdin:1:19: error: hist() takes an integer here, found string[16]
  |
1 | begin { @h = hist(comm); }
  |                   ^^^^ not an integer
  |
  = help: usage: @x = hist(value[, k])
"#,
    );
}

#[test]
fn map_key_types_differ() {
    check(
        r#"begin { @m[1] = 1; @m["a"] = 2; }"#,
        r#"stdin:1:20: error: map @m is used with different keys: string[8] here, int64 before
  |
1 | begin { @m[1] = 1; @m["a"] = 2; }
  |                    ^^^^^^^ inconsistent key
"#,
    );
}

#[test]
fn map_key_counts_differ() {
    check(
        r#"begin { @x[1, 2] = 1; @x[1] = 2; }"#,
        r#"stdin:1:23: error: map @x is used with different keys: int64 here, (int64, int64) before
  |
1 | begin { @x[1, 2] = 1; @x[1] = 2; }
  |                       ^^^^^ inconsistent key
"#,
    );
}

#[test]
fn count_map_assigned_value() {
    check(
        r#"begin { @m = count(); @m = 5; }"#,
        r#"stdin:1:23: error: map @m already holds count(); it cannot also hold values of type int64
  |
1 | begin { @m = count(); @m = 5; }
  |                       ^^ conflicting use
"#,
    );
}

#[test]
fn map_value_types_differ() {
    check(
        r#"begin { @x = 1; @x = "a"; }"#,
        r#"stdin:1:17: error: map @x already holds values of type int64; it cannot also hold values of type string[8]
  |
1 | begin { @x = 1; @x = "a"; }
  |                 ^^ conflicting use
"#,
    );
}

#[test]
fn map_read_never_assigned() {
    check(
        r#"begin { printf("%d\n", @m); }"#,
        r#"stdin:1:24: error: map @m is read but never assigned
  |
1 | begin { printf("%d\n", @m); }
  |                        ^^ never assigned a value
"#,
    );
}

#[test]
fn undefined_variable() {
    check(
        r#"begin { $count = 1; printf("%d\n", $cuont); }"#,
        r#"stdin:1:36: error: undefined variable '$cuont'
  |
1 | begin { $count = 1; printf("%d\n", $cuont); }
  |                                    ^^^^^^ not assigned before this use
  |
  = help: did you mean '$count'?
"#,
    );
}

#[test]
fn variable_type_changes() {
    check(
        r#"begin { $x = 1; $x = "a"; }"#,
        r#"stdin:1:17: error: type mismatch for $x: it holds int64, not string[8]
  |
1 | begin { $x = 1; $x = "a"; }
  |                 ^^ mismatched types
"#,
    );
}

#[test]
fn assign_positional_parameter() {
    check(
        r#"begin { $1 = 5; }"#,
        r#"stdin:1:9: error: positional parameters cannot be assigned
  |
1 | begin { $1 = 5; }
  |         ^^ read-only
  |
  = help: copy it into a variable and change that: $v = $1;
"#,
    );
}

#[test]
fn assign_builtin() {
    check(
        r#"begin { pid = 1; }"#,
        r#"stdin:1:9: error: cannot assign to this expression
  |
1 | begin { pid = 1; }
  |         ^^^ not a map or variable
  |
  = help: did you mean the variable '$pid' or the map '@pid'?
"#,
    );
}

#[test]
fn break_outside_loop() {
    check(
        r#"begin { break; }"#,
        r#"stdin:1:9: error: 'break' outside of a loop
  |
1 | begin { break; }
  |         ^^^^^ not in a loop
  |
  = help: to leave the probe early use 'return'
"#,
    );
}

#[test]
fn continue_outside_loop() {
    check(
        r#"begin { continue; }"#,
        r#"stdin:1:9: error: 'continue' outside of a loop
  |
1 | begin { continue; }
  |         ^^^^^^^^ not in a loop
  |
  = help: to leave the probe early use 'return'
"#,
    );
}

#[test]
fn unroll_zero() {
    check(
        r#"begin { unroll(0) { } }"#,
        r#"stdin:1:16: error: unroll needs a literal count between 1 and 100
  |
1 | begin { unroll(0) { } }
  |                ^ invalid count
"#,
    );
}

#[test]
fn unroll_too_many() {
    check(
        r#"begin { unroll(1000) { } }"#,
        r#"stdin:1:16: error: unroll needs a literal count between 1 and 100
  |
1 | begin { unroll(1000) { } }
  |                ^^^^ invalid count
"#,
    );
}

#[test]
fn cast_to_float() {
    check(
        r#"begin { $x = (float)1; }"#,
        r#"stdin:1:15: error: unknown type 'float' in cast
  |
1 | begin { $x = (float)1; }
  |               ^^^^^ not a type
  |
  = help: eBPF has no floating point; cast to an integer type like int64 or uint64
"#,
    );
}

#[test]
fn cast_to_c_int() {
    check(
        r#"begin { $x = (int)comm; }"#,
        r#"stdin:1:15: error: unknown type 'int' in cast
  |
1 | begin { $x = (int)comm; }
  |               ^^^ not a type
  |
  = help: did you mean 'int64'?
"#,
    );
}

#[test]
fn cast_string_to_integer() {
    check(
        r#"begin { $x = (uint64)comm; }"#,
        r#"stdin:1:22: error: cannot cast a string[16] to an integer
  |
1 | begin { $x = (uint64)comm; }
  |                      ^^^^ not an integer
"#,
    );
}

#[test]
fn string_equals_integer() {
    check(
        r#"begin { if (comm == 1) { } }"#,
        r#"stdin:1:12: error: cannot compare string[16] with int64
  |
1 | begin { if (comm == 1) { } }
  |            ^^^^^^^^^^^ mismatched types
"#,
    );
}

#[test]
fn string_plus_integer() {
    check(
        r#"begin { $x = comm + 1; }"#,
        r#"stdin:1:14: error: operator '+' needs integers, found string[16]
  |
1 | begin { $x = comm + 1; }
  |              ^^^^ string[16]
"#,
    );
}

#[test]
fn ternary_branch_types() {
    check(
        r#"begin { $x = 1 ? "a" : 2; }"#,
        r#"stdin:1:24: error: both branches of '?:' must have the same type, found string[8] and int64
  |
1 | begin { $x = 1 ? "a" : 2; }
  |                        ^ different type
"#,
    );
}

#[test]
fn clear_of_variable() {
    check(
        r#"begin { $x = 1; clear($x); }"#,
        r#"stdin:1:23: error: clear() takes a map
  |
1 | begin { $x = 1; clear($x); }
  |                       ^^ not a map
"#,
    );
}

#[test]
fn delete_of_variable() {
    check(
        r#"begin { $x = 1; delete($x); }"#,
        r#"stdin:1:24: error: delete() takes a map
  |
1 | begin { $x = 1; delete($x); }
  |                        ^^ not a map
"#,
    );
}

#[test]
fn error_in_second_probe() {
    check(
        r#"tracepoint:syscalls:sys_enter_read { @r = count(); }
tracepoint:syscalls:sys_enter_write { @w = cnt(); }"#,
        r#"stdin:2:44: error: unknown function 'cnt'
  |
2 | tracepoint:syscalls:sys_enter_write { @w = cnt(); }
  |                                            ^^^ not a known function
  |
  = help: did you mean 'count'?
"#,
    );
}

// ---- usage errors ----

#[test]
fn unknown_flag() {
    check_args(
        &["--bogus"],
        "ferret: unknown option '--bogus'\nTry 'ferret --help' for more information.\n",
    );
}

#[test]
fn no_program() {
    check_args(
        &[],
        "ferret: no program given: pass a script file, '-' for stdin, or -e 'program'\n\
         Try 'ferret --help' for more information.\n",
    );
}

#[test]
fn e_without_program() {
    check_args(
        &["-e"],
        "error: a value is required for '-e <PROGRAM>' but none was supplied\n\n\
         For more information, try '--help'.\n",
    );
}

#[test]
fn unknown_output_format() {
    check_args(
        &["-f", "xml", "-e", "begin { }"],
        "ferret: invalid output format 'xml': expected text or json\n\
         Try 'ferret --help' for more information.\n",
    );
}

#[test]
fn process_target_usage_errors() {
    let usage = "\nTry 'ferret --help' for more information.\n";
    check_args(
        &["-p", "1", "-c", "true", "-e", "begin { }"],
        &format!("ferret: cannot use both -c and -p{usage}"),
    );
    check_args(
        &["-p", "12ab", "-e", "begin { }"],
        &format!("ferret: invalid pid '12ab' for -p: expected a process id{usage}"),
    );
    check_args(
        &["-B", "block", "-e", "begin { }"],
        &format!(
            "ferret: invalid buffering mode 'block' for -B: expected line, full or none{usage}"
        ),
    );
    check_args(
        &["-d", "verifier", "-e", "begin { }"],
        &format!(
            "ferret: invalid stage for -d: 'verifier' (a bpftrace stage ferret does not have): \
             expected all, codegen or dis{usage}"
        ),
    );
}

#[test]
fn process_that_cannot_be_followed() {
    check_args(
        &["-p", "4194303", "-e", "begin { }"],
        "ferret: no process with pid 4194303\n",
    );
    check_args(
        &["-p", "5000000", "-e", "begin { }"],
        "ferret: pid 5000000 is out of range (1 to 4194304)\n",
    );
    check_args(
        &["-c", "no-such-program-anywhere --flag", "-e", "begin { }"],
        "ferret: cannot run 'no-such-program-anywhere': no such program in PATH\n",
    );
    check_args(
        &["-c", "/no/such/program", "-e", "begin { }"],
        "ferret: cannot run '/no/such/program': no such file\n",
    );
    check_args(
        &["-c", "   ", "-e", "begin { }"],
        "ferret: -c needs a command to run\n",
    );
}

#[test]
fn thread_id_is_not_a_process() {
    // A thread of this test process: -p wants the process.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = done_rx.recv();
    });
    let tid = rx.recv().unwrap().to_string();
    let me = std::process::id();
    check_args(
        &["-p", &tid, "-e", "begin { }"],
        &format!("ferret: {tid} is a thread of process {me}, not a process: use -p {me}\n"),
    );
    done_tx.send(()).unwrap();
    thread.join().unwrap();
}

#[test]
fn cpid_without_a_command() {
    check(
        r#"begin { printf("%d\n", cpid); }"#,
        r#"stdin:1:24: error: cpid is the pid of the command ferret runs with -c, and there is none
  |
1 | begin { printf("%d\n", cpid); }
  |                        ^^^^ no -c command
  |
  = help: run the command under ferret: ferret -c 'CMD' ...
"#,
    );
}

#[test]
fn unknown_software_and_hardware_events() {
    check(
        "software:pagefaults { }",
        r#"stdin:1:1: error: 'pagefaults' is not a software event
  |
1 | software:pagefaults { }
  | ^^^^^^^^^^^^^^^^^^^ unknown event
  |
  = help: did you mean 'software:page-faults'?
"#,
    );
    check(
        "h:cpu-cycle:1000 { }",
        r#"stdin:1:1: error: 'cpu-cycle' is not a hardware event
  |
1 | h:cpu-cycle:1000 { }
  | ^^^^^^^^^^^^^^^^ unknown event
  |
  = help: did you mean 'hardware:cpu-cycles'?
"#,
    );
    check(
        "s:faults:lots { }",
        r#"stdin:1:1: error: software probe count must be a positive integer, not 'lots'
  |
1 | s:faults:lots { }
  | ^^^^^^^^^^^^^ invalid count
  |
  = help: for example software:faults:1000
"#,
    );
    check(
        "software:* { }",
        r#"stdin:1:1: error: wildcards are not allowed in software probes
  |
1 | software:* { }
  | ^^^^^^^^^^ wildcard
  |
  = help: list them with: ferret -l 'software:*'
"#,
    );
}

#[test]
fn hardware_probe_without_a_pmu() {
    if !root() {
        eprintln!("skipped: attaching needs root");
        return;
    }
    let devices = "/sys/bus/event_source/devices";
    if std::path::Path::new(devices).join("cpu").exists() {
        eprintln!("skipped: this machine has a CPU PMU");
        return;
    }
    let mut pmus: Vec<String> = std::fs::read_dir(devices)
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    pmus.sort();
    check(
        "begin { } hardware:cycles { @ = count(); }",
        &format!(
            r#"stdin:1:11: error: hardware:cycles needs hardware performance counters, and this machine has none
  |
1 | begin {{ }} hardware:cycles {{ @ = count(); }}
  |           ^^^^^^^^^^^^^^^ no CPU PMU to count this event
  |
  = help: software:cpu-clock or profile:hz:99 sample on a timer instead
  = note: {devices} has: {} (no CPU PMU)
"#,
            pmus.join(" ")
        ),
    );
}

#[test]
fn unreadable_script() {
    check_args(
        &["/nonexistent/script.bt"],
        "ferret: cannot read /nonexistent/script.bt: No such file or directory (os error 2)\n\
         Try 'ferret --help' for more information.\n",
    );
}

#[test]
fn script_is_a_directory() {
    let dir = common::TempDir::new("dir");
    let dir = dir.0.display().to_string();
    check_args(
        &[&dir],
        &format!(
            "ferret: cannot read {dir}: Is a directory (os error 21)\n\
             Try 'ferret --help' for more information.\n"
        ),
    );
}

#[test]
fn errors_in_a_script_name_the_file_and_line() {
    let dir = common::TempDir::new("scrp");
    let path = dir.path("errors_prinft.bt");
    std::fs::write(
        &path,
        "begin {\n  printf(\"ok\\n\");\n  prinft(\"x\");\n}\n",
    )
    .expect("write script");
    let name = path.display().to_string();
    check_args(
        &[&name],
        &format!(
            "{name}:3:3: error: unknown function 'prinft'\n  |\n3 |   prinft(\"x\");\n  |   ^^^^^^ not a known function\n  |\n  = help: did you mean 'printf'?\n"
        ),
    );
}

// ---- the kernel's verifier ----

/// The log lines come from the kernel, so only the part ferret writes is
/// compared exactly; the notes must end with the verifier's reason.
fn check_verifier(program: &str, head: &str, reason: &str) {
    check_verifier_any(program, &[(head, reason)]);
}

/// [`check_verifier`] where kernels differ: one of `answers` (head and
/// reason) must be given.
fn check_verifier_any(program: &str, answers: &[(&str, &str)]) {
    if !root() {
        eprintln!("skipped: loading programs needs root");
        return;
    }
    let out = ferret(&["-e", program]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(&(head, reason)) = answers.iter().find(|(h, _)| stderr.starts_with(h)) else {
        panic!("stderr:\n{stderr}");
    };
    let notes: Vec<&str> = stderr[head.len()..].lines().collect();
    assert!(!notes.is_empty() && notes.len() <= 8, "stderr:\n{stderr}");
    assert!(
        notes.iter().all(|l| l.starts_with("  = note: ")),
        "stderr:\n{stderr}"
    );
    assert!(
        notes.iter().any(|l| l.contains(reason)),
        "stderr:\n{stderr}"
    );
    assert!(
        !notes.iter().any(|l| l.contains("verification time")),
        "stderr:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn verifier_rejects_an_endless_loop() {
    check_verifier(
        "begin { while (1) { } }",
        "stdin:1:9: error: the kernel's verifier rejected probe begin
  |
1 | begin { while (1) { } }
  |         ^^^^^^^^^ this loop never ends
  |
  = help: give it a condition that becomes false sooner, or loop with for ($i : 0..N), which the kernel bounds
",
        "infinite loop detected",
    );
}

/// The rejected probe comes after tracepoints that load fine: nothing is
/// attached (no "Attached N probes"), and the error points at the right
/// probe.
#[test]
fn verifier_rejection_attaches_nothing() {
    check_endless_loop(
        "tracepoint:syscalls:sys_enter_read,tracepoint:syscalls:sys_enter_write { @ = count(); }
interval:s:1 { $i = 1; while ($i) { $i = 1; } }",
        "stdin:2:24: error: the kernel's verifier rejected probe interval:s:1
  |
2 | interval:s:1 { $i = 1; while ($i) { $i = 1; } }
  |                        ^^^^^^^^^^ this loop never ends
  |
  = help: give it a condition that becomes false sooner, or loop with for ($i : 0..N), which the kernel bounds
",
    );
}

/// A loop whose variable is set again each time round: 6.1's verifier
/// does not see that it never ends, gives up after a million
/// instructions, and says that instead.
fn check_endless_loop(program: &str, head: &str) {
    let gave_up = head.replace(
        "this loop never ends",
        "the verifier cannot follow this loop to its end",
    );
    check_verifier_any(
        program,
        &[
            (head, "infinite loop detected"),
            (&gave_up, "BPF program is too large"),
        ],
    );
}

// Library functions: wrong arguments, unsafe functions without --unsafe.

#[test]
fn system_needs_unsafe() {
    check(
        r#"begin { system("ls"); }"#,
        r#"stdin:1:9: error: system() is unsafe: it acts outside the trace
  |
1 | begin { system("ls"); }
  |         ^^^^^^^^^^^^ needs --unsafe
  |
  = help: run with --unsafe to allow it
"#,
    );
}

#[test]
fn signal_needs_unsafe() {
    check(
        r#"tracepoint:syscalls:sys_enter_getpid { signal("SIGKILL"); }"#,
        r#"stdin:1:40: error: signal() is unsafe: it acts outside the trace
  |
1 | tracepoint:syscalls:sys_enter_getpid { signal("SIGKILL"); }
  |                                        ^^^^^^^^^^^^^^^^^ needs --unsafe
  |
  = help: run with --unsafe to allow it
"#,
    );
}

#[test]
fn unknown_signal_name() {
    if !root() {
        return;
    }
    check_args(
        &[
            "--unsafe",
            "-e",
            r#"tracepoint:syscalls:sys_enter_getpid { signal("SIGKLL"); }"#,
        ],
        r#"stdin:1:47: error: signal(): unknown signal 'SIGKLL'
  |
1 | tracepoint:syscalls:sys_enter_getpid { signal("SIGKLL"); }
  |                                               ^^^^^^^^ unknown signal
  |
  = help: did you mean 'SIGKILL'?
"#,
    );
}

#[test]
fn hist_of_a_string_names_hist() {
    check(
        r#"begin { @ = hist(comm); }"#,
        r#"stdin:1:18: error: hist() takes an integer here, found string[16]
  |
1 | begin { @ = hist(comm); }
  |                  ^^^^ not an integer
  |
  = help: usage: @x = hist(value[, k])
"#,
    );
}

#[test]
fn string_predicate() {
    check(
        r#"tracepoint:syscalls:sys_enter_getpid /comm/ { }"#,
        r#"stdin:1:39: error: invalid type for a predicate: string[16]
  |
1 | tracepoint:syscalls:sys_enter_getpid /comm/ { }
  |                                       ^^^^ not an integer or bool
  |
  = help: a predicate is a condition: compare the value, e.g. /comm == "bash"/
"#,
    );
}

#[test]
fn strncmp_argument_count() {
    check(
        r#"begin { print(strncmp("a", "b")); }"#,
        r#"stdin:1:15: error: strncmp() takes 3 arguments, 2 given
  |
1 | begin { print(strncmp("a", "b")); }
  |               ^^^^^^^^^^^^^^^^^ wrong number of arguments
  |
  = help: usage: strncmp(string, string, length)
"#,
    );
}

#[test]
fn strncmp_length_not_literal() {
    check(
        r#"begin { $n = 2; print(strncmp("a", "b", $n)); }"#,
        r#"stdin:1:41: error: strncmp()'s length must be a non-negative integer literal
  |
1 | begin { $n = 2; print(strncmp("a", "b", $n)); }
  |                                         ^^ not a literal
  |
  = help: usage: strncmp(string, string, length)
"#,
    );
}

#[test]
fn strlen_of_an_integer() {
    check(
        r#"begin { print(strlen(1)); }"#,
        r#"stdin:1:22: error: strlen() takes a string here, found int64
  |
1 | begin { print(strlen(1)); }
  |                      ^ not a string
  |
  = help: usage: strlen(string)
"#,
    );
}

#[test]
fn kaddr_unknown_symbol() {
    check(
        r#"begin { print(kaddr("no_such_symbol_x")); }"#,
        r#"stdin:1:21: error: kaddr(): no kernel symbol named 'no_such_symbol_x'
  |
1 | begin { print(kaddr("no_such_symbol_x")); }
  |                     ^^^^^^^^^^^^^^^^^^ unknown symbol
  |
  = help: the kernel's symbols are listed in /proc/kallsyms
"#,
    );
}

#[test]
fn pton_invalid_address() {
    check(
        r#"begin { print(pton("1.2.3")); }"#,
        r#"stdin:1:20: error: pton(): '1.2.3' is not an IP address
  |
1 | begin { print(pton("1.2.3")); }
  |                    ^^^^^^^ invalid address
  |
  = help: write an IPv4 address like "127.0.0.1" or an IPv6 one like "::1"
"#,
    );
}

#[test]
fn has_key_on_scalar_map() {
    check(
        r#"begin { @x = 1; print(has_key(@x, 1)); }"#,
        r#"stdin:1:23: error: has_key() expects a map with keys; @x has none
  |
1 | begin { @x = 1; print(has_key(@x, 1)); }
  |                       ^^^^^^^^^^^^^^ scalar map
  |
  = help: usage: has_key(@map, key)
"#,
    );
}

#[test]
fn ntop_of_a_string() {
    check(
        r#"begin { print(ntop("str")); }"#,
        r#"stdin:1:20: error: ntop() takes an integer or a 4- or 16-byte array here, found string[8]
  |
1 | begin { print(ntop("str")); }
  |                    ^^^^^ not an integer or a 4- or 16-byte array
  |
  = help: usage: ntop([af, ] address)
"#,
    );
}

#[test]
fn array_index_out_of_bounds() {
    check(
        r#"begin { $a = (uint8[4])1; print($a[4]); }"#,
        r#"stdin:1:36: error: index 4 is out of bounds: the uint8[4] has 4 elements
  |
1 | begin { $a = (uint8[4])1; print($a[4]); }
  |                                    ^ out of bounds
"#,
    );
}

#[test]
fn printf_r_needs_a_buffer() {
    check(
        r#"begin { printf("%r", 5); }"#,
        r#"stdin:1:22: error: printf: %r expects a buffer, found int64
  |
1 | begin { printf("%r", 5); }
  |                      ^ not a buffer
  |
  = help: read one with buf(pointer, length)
"#,
    );
}

#[test]
fn unknown_config_key() {
    check(
        "config = { max_strln = 5 } begin { }",
        "stdin:1:12: error: max_strln: not a known configuration option
  |
1 | config = { max_strln = 5 } begin { }
  |            ^^^^^^^^^ unknown setting
  |
  = help: did you mean 'max_strlen'?
",
    );
}

#[test]
fn bad_config_value() {
    check(
        "config = { stack_mode = pref } begin { }",
        "stdin:1:25: error: invalid value for stack_mode: valid values are bpftrace, perf, raw
  |
1 | config = { stack_mode = pref } begin { }
  |                         ^^^^ invalid value
  |
  = help: did you mean 'perf'?
",
    );
}

#[test]
fn config_after_a_probe() {
    check(
        "begin { }\nconfig = { max_strlen = 5 }",
        "stdin:2:1: error: config must appear before probes and macros
  |
2 | config = { max_strlen = 5 }
  | ^^^^^^ too late for a config block
  |
  = help: move the config block to the top of the script
",
    );
}

#[test]
fn bad_config_environment_variable() {
    let out = Command::new(common::ferret_path())
        .args(["-e", "begin { }"])
        .env("BPFTRACE_STACK_MODE", "pref")
        .output()
        .expect("ferret runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ferret: invalid BPFTRACE_STACK_MODE='pref': valid values are bpftrace, perf, raw\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn recursive_macro() {
    check(
        "macro a() { b() }\nmacro b() { a() }\nbegin { a(); }",
        "stdin:2:13: error: recursive macro call: a > b > a
  |
2 | macro b() { a() }
  |             ^^^ calls a macro that is being expanded
  |
  = help: macros cannot call themselves, directly or through others
",
    );
}

#[test]
fn macro_argument_count() {
    check(
        "macro add(x, y) { x + y }\nbegin { print(add(1)); }",
        "stdin:2:15: error: macro add() takes 2 arguments, 1 given
  |
2 | begin { print(add(1)); }
  |               ^^^^^^ wrong number of arguments to add()
  |
  = help: add is defined with (x, y)
",
    );
}

#[test]
fn unhygienic_map_in_macro() {
    check(
        "macro bump(@m) { @m++; @other++; }\nbegin { bump(@a); }",
        "stdin:1:24: error: unhygienic access to map @other
  |
1 | macro bump(@m) { @m++; @other++; }
  |                        ^^^^^^ not a parameter of this macro
  |
  = help: maps must be passed into the macro as arguments: add @other to the parameters of 'bump'
",
    );
}

#[test]
fn unterminated_preprocessor_conditional() {
    check(
        "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/sched.h>\nbegin { }",
        "stdin:1:1: error: unterminated conditional directive
  |
1 | #ifndef BPFTRACE_HAVE_BTF
  | ^^^^^^^ this has no matching '#endif'
  |
  = help: close it with '#endif'
",
    );
}

#[test]
fn preprocessor_error_directive_and_unknown_directive() {
    check(
        "#if 1\n#error this kernel is too old\n#endif\nbegin {}",
        "stdin:2:1: error: #error this kernel is too old
  |
2 | #error this kernel is too old
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ #error
",
    );
    check(
        "#defne X 1\nbegin {}",
        "stdin:1:1: error: unknown preprocessor directive '#defne'
  |
1 | #defne X 1
  | ^^^^^^ not a directive
  |
  = help: did you mean '#define'?
",
    );
}

#[test]
fn error_inside_a_define_points_at_its_use() {
    check(
        "#define BAD 1 + )\nbegin {\n  @x = BAD;\n}",
        "stdin:3:8: error: expected an expression but found ')'
  |
3 |   @x = BAD;
  |        ^^^ expected an expression
  |
  = note: in the expansion of this macro
",
    );
    check(
        "#define MAX(a, b) ((a) > (b) ? (a) : (b))\nbegin { print(MAX(1)); }",
        "stdin:2:15: error: macro 'MAX' takes 2 arguments, 1 given
  |
2 | begin { print(MAX(1)); }
  |               ^^^^^^ in this macro use
",
    );
}

#[test]
fn end_probe_with_arguments() {
    check(
        "end:foo { }",
        "stdin:1:1: error: end probe type requires 0 arguments, found 1
  |
1 | end:foo { }
  | ^^^^^^^ unexpected arguments
  |
  = help: write 'end' alone
",
    );
}

#[test]
fn bad_map_declarations() {
    check(
        "let @a = lruhsh(10);\nbegin { @a[1] = 1; }",
        "stdin:1:10: error: invalid map type 'lruhsh'
  |
1 | let @a = lruhsh(10);
  |          ^^^^^^ not a map type
  |
  = help: did you mean 'lruhash'?
",
    );
    check(
        "let @a = hash(10);\nbegin { @a[1] = count(); }",
        "stdin:1:10: error: incompatible map types: @a is declared hash but its values need a per-CPU map
  |
1 | let @a = hash(10);
  |          ^^^^ declared map type
  |
  = help: declare it as 'let @a = percpuhash(10);'
",
    );
}

#[test]
fn named_parameter_errors() {
    let prog = r#"begin { print(getopt("depth", 35, "Maximum depth")); }"#;
    check_args(
        &["-e", prog, "--", "--dpth=3"],
        "ferret: unexpected program option --dpth
the program's options:
  --depth  Maximum depth
Try 'ferret --help' for more information.
",
    );
    check_args(
        &["-e", prog, "--", "--depth=x"],
        r#"stdin:1:15: error: program command line option --depth expects an integer (value: x)
  |
1 | begin { print(getopt("depth", 35, "Maximum depth")); }
  |               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ the option is read here
"#,
    );
}
// ---- loops, records, declarations, system functions ----

#[test]
fn for_over_a_scalar_map() {
    check(
        r#"begin { @m = 1; for ($kv : @m) { } }"#,
        r#"stdin:1:28: error: @m has no keys (a scalar map): there is nothing to iterate over
  |
1 | begin { @m = 1; for ($kv : @m) { } }
  |                            ^^ scalar map
  |
  = help: for loops walk maps with keys, like @m[pid] = count()
"#,
    );
}

#[test]
fn for_over_a_histogram() {
    check(
        r#"begin { @m[1] = hist(2); for ($kv : @m) { } }"#,
        r#"stdin:1:37: error: cannot iterate over @m: it holds hist()
  |
1 | begin { @m[1] = hist(2); for ($kv : @m) { } }
  |                                     ^^ not iterable
  |
  = help: for loops walk maps of plain values and of count, sum, min, max and avg; print this one with print()
"#,
    );
}

#[test]
fn for_over_one_key_of_a_map() {
    check(
        r#"begin { @m[1] = 1; for ($kv : @m[1]) { } }"#,
        r#"stdin:1:31: error: a for loop walks a whole map: write @m without a key
  |
1 | begin { @m[1] = 1; for ($kv : @m[1]) { } }
  |                               ^^^^^ remove the key
  |
  = help: for ($kv : @m) { ... }
"#,
    );
}

#[test]
fn for_variable_shadows_a_variable() {
    check(
        r#"begin { $kv = 1; @m[1] = 1; for ($kv : @m) { } }"#,
        r#"stdin:1:34: error: the loop variable $kv shadows a variable already in scope
  |
1 | begin { $kv = 1; @m[1] = 1; for ($kv : @m) { } }
  |                                  ^^^ already a variable here
  |
  = help: give the loop variable a name of its own
"#,
    );
}

#[test]
fn for_range_of_a_string() {
    check(
        r#"begin { for ($i : 0.."ten") { } }"#,
        r#"stdin:1:22: error: a range's end must be an integer, found string[8]
  |
1 | begin { for ($i : 0.."ten") { } }
  |                      ^^^^^ not an integer
  |
  = help: write for ($i : 0..10)
"#,
    );
}

#[test]
fn for_over_a_number() {
    check(
        r#"begin { for ($kv : 5) { } }"#,
        r#"stdin:1:20: error: expected a map or a range to iterate over
  |
1 | begin { for ($kv : 5) { } }
  |                    ^ not a map or range
  |
  = help: write 'for ($kv : @map)' or 'for ($i : 0..10)'
"#,
    );
}

#[test]
fn len_of_a_scalar_map() {
    check(
        r#"begin { @m = count(); print(len(@m)); }"#,
        r#"stdin:1:33: error: len() expects a map with keys; @m has none
  |
1 | begin { @m = count(); print(len(@m)); }
  |                                 ^^ scalar map
  |
  = help: len() counts the keys of maps like @m[pid] = count()
"#,
    );
}

#[test]
fn len_of_a_number() {
    check(
        r#"begin { print(len(5)); }"#,
        r#"stdin:1:19: error: len() takes a map or a stack, found int64
  |
1 | begin { print(len(5)); }
  |                   ^ not a map
  |
  = help: usage: len(@map) or len(kstack)
"#,
    );
}

#[test]
fn record_without_the_field() {
    check(
        r#"begin { $r = (a = 1, b = 2); print($r.c); }"#,
        r#"stdin:1:39: error: the record (a=int64, b=int64) has no field 'c'
  |
1 | begin { $r = (a = 1, b = 2); print($r.c); }
  |                                       ^ no such field
  |
  = help: did you mean 'a'?
"#,
    );
}

#[test]
fn record_with_a_field_twice() {
    check(
        r#"begin { $r = (a = 1, a = 2); }"#,
        r#"stdin:1:22: error: the record has two fields named 'a'
  |
1 | begin { $r = (a = 1, a = 2); }
  |                      ^ duplicate field
  |
  = help: give each field its own name
"#,
    );
}

#[test]
fn let_declares_a_variable_twice() {
    check(
        r#"begin { $x = 1; let $x; }"#,
        r#"stdin:1:21: error: $x is already declared here
  |
1 | begin { $x = 1; let $x; }
  |                     ^^ declared before
  |
  = help: assign it without 'let' ($x = ...), or choose another name
"#,
    );
}

#[test]
fn let_never_assigned() {
    check(
        r#"begin { let $x; print($x); }"#,
        r#"stdin:1:23: error: $x is declared but never assigned: its type is unknown
  |
1 | begin { let $x; print($x); }
  |                       ^^ never assigned
  |
  = help: give it a type: let $x: uint64;
"#,
    );
}

#[test]
fn let_assigned_two_types() {
    check(
        r#"begin { let $x; $x = 1; $x = "s"; }"#,
        r#"stdin:1:25: error: type mismatch for $x: it holds int64, not string[8]
  |
1 | begin { let $x; $x = 1; $x = "s"; }
  |                         ^^ mismatched types
"#,
    );
}

#[test]
fn nsecs_of_an_unknown_clock() {
    check(
        r#"begin { print(nsecs(wallclock)); }"#,
        r#"stdin:1:21: error: nsecs() takes one of: monotonic, boot, tai, sw_tai
  |
1 | begin { print(nsecs(wallclock)); }
  |                     ^^^^^^^^^ unknown mode
  |
  = help: usage: nsecs or nsecs(monotonic|boot|tai|sw_tai)
"#,
    );
}

#[test]
fn pid_of_an_unknown_namespace() {
    check(
        r#"begin { print(pid(inti)); }"#,
        r#"stdin:1:19: error: pid() takes one of: curr_ns, init
  |
1 | begin { print(pid(inti)); }
  |                   ^^^^ unknown mode
  |
  = help: did you mean 'init'?
"#,
    );
}

#[test]
fn memcmp_negative_count() {
    check(
        r#"begin { print(memcmp("a", "b", -1)); }"#,
        r#"stdin:1:32: error: memcmp()'s count is negative
  |
1 | begin { print(memcmp("a", "b", -1)); }
  |                                ^^ negative
  |
  = help: usage: memcmp(left, right, count)
"#,
    );
}

#[test]
fn syscall_name_without_a_number() {
    check(
        r#"begin { print(syscall_name()); }"#,
        r#"stdin:1:15: error: syscall_name() takes 1 argument, 0 given
  |
1 | begin { print(syscall_name()); }
  |               ^^^^^^^^^^^^^^ wrong number of arguments
  |
  = help: usage: syscall_name(number)
"#,
    );
}

#[test]
fn strstr_of_a_number() {
    check(
        r#"begin { print(strstr("a", 1)); }"#,
        r#"stdin:1:27: error: strstr() takes a string here, found int64
  |
1 | begin { print(strstr("a", 1)); }
  |                           ^ not a string
  |
  = help: usage: strstr(haystack, needle)
"#,
    );
}

#[test]
fn signal_thread_needs_unsafe() {
    check(
        r#"tracepoint:syscalls:sys_enter_read { signal_thread("SIGKILL"); }"#,
        r#"stdin:1:38: error: signal_thread() is unsafe: it acts outside the trace
  |
1 | tracepoint:syscalls:sys_enter_read { signal_thread("SIGKILL"); }
  |                                      ^^^^^^^^^^^^^^^^^^^^^^^^ needs --unsafe
  |
  = help: run with --unsafe to allow it
"#,
    );
}

/// A loop that ends, but after more iterations than the verifier follows:
/// the error points at the loop and offers the bounded `for` instead.
#[test]
fn verifier_cannot_follow_a_long_while_loop() {
    check_verifier(
        "begin { $i = 0; while ($i < 1000000) { $i++; } }",
        "stdin:1:17: error: the kernel's verifier rejected probe begin
  |
1 | begin { $i = 0; while ($i < 1000000) { $i++; } }
  |                 ^^^^^^^^^^^^^^^^^^^^ the verifier cannot follow this loop to its end
  |
  = help: give it a condition that becomes false sooner, or loop with for ($i : 0..N), which the kernel bounds
",
        "BPF program is too large",
    );
}

/// An endless `while` inside a `for` body (a callback) is found there.
#[test]
fn verifier_rejects_an_endless_loop_in_a_for_body() {
    check_endless_loop(
        "begin { @m[1] = 1; for ($kv : @m) { $i = 1; while ($i) { $i = 1; } } }",
        "stdin:1:45: error: the kernel's verifier rejected probe begin
  |
1 | begin { @m[1] = 1; for ($kv : @m) { $i = 1; while ($i) { $i = 1; } } }
  |                                             ^^^^^^^^^^ this loop never ends
  |
  = help: give it a condition that becomes false sooner, or loop with for ($i : 0..N), which the kernel bounds
",
    );
}
