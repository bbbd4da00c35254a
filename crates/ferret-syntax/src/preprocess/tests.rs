//! Preprocessor output, and diagnostics rendered against the text as
//! written.

use super::*;
use crate::parse;

fn pre(src: &str) -> Preprocessed {
    let file = SourceFile::new("stdin", src);
    match preprocess(&file) {
        Ok(p) => p,
        Err(d) => {
            let rendered: Vec<String> = d.iter().map(|d| d.render(&file)).collect();
            panic!("errors for {src:?}:\n{}", rendered.join("\n"))
        }
    }
}

fn text(src: &str) -> String {
    pre(src).file.text
}

/// Preprocessing errors, rendered.
fn errors(src: &str) -> String {
    let file = SourceFile::new("stdin", src);
    match preprocess(&file) {
        Ok(_) => panic!("{src:?} preprocessed without errors"),
        Err(d) => d.iter().map(|d| d.render(&file)).collect(),
    }
}

/// Parse errors of the preprocessed text, rendered against the original.
fn parse_errors(src: &str) -> String {
    let p = pre(src);
    match parse(&p.file) {
        Ok(_) => panic!("{src:?} parsed without errors"),
        Err(d) => d.iter().map(|d| d.render(&p.file)).collect(),
    }
}

#[test]
fn object_like_macros_expand_in_code_only() {
    assert_eq!(
        text("#define N 5\nbegin { $N = N; @N = N; args.N; printf(\"N\"); } // N"),
        "           \nbegin { $N = 5; @N = 5; args.N; printf(\"N\"); } // N"
    );
}

#[test]
fn directives_keep_line_numbers() {
    let t =
        text("#!/usr/bin/env bpftrace\n#include <linux/sched.h>\n#define A \\\n  1\nbegin { A }");
    assert_eq!(t.lines().count(), 5);
    assert_eq!(t.lines().last(), Some("begin { 1 }"));
    assert!(t.lines().take(4).all(|l| l.trim().is_empty()));
}

#[test]
fn function_like_macros_take_arguments() {
    assert_eq!(
        text("#define ADD(a, b) ((a) + (b))\nADD(1, f(2, 3))"),
        "                             \n((1) + (f(2, 3)))"
    );
    // Without '(' the name is left alone.
    assert_eq!(text("#define F(x) x\nF + 1"), "              \nF + 1");
    assert_eq!(text("#define Z() 7\nZ()"), "             \n7");
    assert_eq!(
        text("#define V(a, ...) f(a, __VA_ARGS__)\nV(1, 2, 3)"),
        "                                   \nf(1, 2, 3)"
    );
}

#[test]
fn expansion_is_rescanned_but_not_recursive() {
    assert_eq!(
        text("#define A B + 1\n#define B A\nA").lines().last(),
        Some("A + 1")
    );
    assert_eq!(
        text("#define TWICE(x) (x) * 2\n#define N 3\nTWICE(N)"),
        "                        \n           \n(3) * 2"
    );
}

#[test]
fn conditionals_with_btf_defined() {
    let src = "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/sched.h>\nold\n#else\n#define TASK_RUNNING 0\n#endif\nTASK_RUNNING";
    let p = pre(src);
    assert_eq!(p.file.text.lines().last(), Some("0"));
    assert!(!p.file.text.contains("old"));
    assert!(
        p.skipped_includes.is_empty(),
        "the include was in a skipped branch"
    );

    assert_eq!(text("#ifdef BPFTRACE_HAVE_BTF\nyes\n#endif").trim(), "yes");
    assert_eq!(
        text("#if defined(NOPE) || 0\na\n#elif defined BPFTRACE_HAVE_BTF && 2 > 1\nb\n#else\nc\n#endif").trim(),
        "b"
    );
    assert_eq!(
        text("#if 0\n#if 1\na\n#endif\n#else\nb\n#endif").trim(),
        "b"
    );
    assert_eq!(
        text("#define V 3\n#if V * 2 == 6\nsix\n#endif").trim(),
        "six"
    );
    assert_eq!(text("#if UNDEFINED\nx\n#endif").trim(), "");
    // A skipped region may hold anything, even an unterminated string.
    assert_eq!(text("#if 0\n\"oops\n#bogus\n#endif\nok").trim(), "ok");
}

#[test]
fn includes_are_recorded_and_skipped() {
    let p = pre("#include <linux/sched.h>\n#include \"local.h\"\nbegin {}");
    assert_eq!(p.skipped_includes, ["<linux/sched.h>", "\"local.h\""]);
}

#[test]
fn undef_removes_a_macro() {
    assert_eq!(text("#define X 1\n#undef X\nX").trim(), "X");
}

#[test]
fn ranges_and_durations_are_not_identifiers() {
    assert_eq!(
        text("#define ms 7\n#define N 4\n5ms 0..N").lines().last(),
        Some("5ms 0..4")
    );
}

#[test]
fn parse_error_inside_expansion_points_at_the_use() {
    assert_eq!(
        parse_errors("#define BAD 1 + )\nbegin {\n  @x = BAD;\n}"),
        "stdin:3:8: error: expected an expression but found ')'\n  |\n3 |   @x = BAD;\n  |        ^^^ expected an expression\n  |\n  = note: in the expansion of this macro\n"
    );
}

#[test]
fn spans_after_an_expansion_are_shifted_back() {
    assert_eq!(
        parse_errors("#define LONG_NAME 123456789\nbegin { @x = LONG_NAME; @y = ; }"),
        "stdin:2:30: error: expected an expression but found ';'\n  |\n2 | begin { @x = LONG_NAME; @y = ; }\n  |                              ^ expected an expression\n"
    );
    assert_eq!(
        parse_errors("#define S 1\nbegin { @x = S; @y = ; }"),
        "stdin:2:22: error: expected an expression but found ';'\n  |\n2 | begin { @x = S; @y = ; }\n  |                      ^ expected an expression\n"
    );
}

#[test]
fn unterminated_conditional() {
    assert_eq!(
        errors("#ifndef BPFTRACE_HAVE_BTF\nbegin {}"),
        "stdin:1:1: error: unterminated conditional directive\n  |\n1 | #ifndef BPFTRACE_HAVE_BTF\n  | ^^^^^^^ this has no matching '#endif'\n  |\n  = help: close it with '#endif'\n"
    );
}

#[test]
fn stray_else_and_endif() {
    assert_eq!(
        errors("#endif\n"),
        "stdin:1:1: error: '#endif' without '#if'\n  |\n1 | #endif\n  | ^^^^^^ no '#if' before this\n"
    );
    assert_eq!(
        errors("#if 1\n#else\n#else\n#endif"),
        "stdin:3:1: error: '#else' after '#else'\n  |\n3 | #else\n  | ^^^^^ the '#else' branch must come last\n"
    );
}

#[test]
fn unknown_directive_suggests() {
    assert_eq!(
        errors("#defne X 1\n"),
        "stdin:1:1: error: unknown preprocessor directive '#defne'\n  |\n1 | #defne X 1\n  | ^^^^^^ not a directive\n  |\n  = help: did you mean '#define'?\n"
    );
}

#[test]
fn wrong_argument_count() {
    assert_eq!(
        errors("#define F(a, b) a\nbegin { F(1) }"),
        "stdin:2:9: error: macro 'F' takes 2 arguments, 1 given\n  |\n2 | begin { F(1) }\n  |         ^^^^ in this macro use\n"
    );
}

#[test]
fn error_directive() {
    assert_eq!(
        errors("#ifdef BPFTRACE_HAVE_BTF\n#error needs headers\n#endif"),
        "stdin:2:1: error: #error needs headers\n  |\n2 | #error needs headers\n  | ^^^^^^^^^^^^^^^^^^^^ #error\n"
    );
}

#[test]
fn recursion_through_arguments_ends() {
    // Each level doubles; the budget stops it with an error, not a hang.
    let mut src = String::from("#define A0 x x\n");
    for i in 1..40 {
        src.push_str(&format!("#define A{i} A{} A{}\n", i - 1, i - 1));
    }
    src.push_str("A39");
    assert!(errors(&src).contains("larger than"));
}

#[test]
fn if_condition_errors() {
    assert_eq!(
        errors("#if 1 +\n#endif"),
        "stdin:1:1: error: invalid #if condition: expected a value\n  |\n1 | #if 1 +\n  | ^^^^^^^ cannot evaluate this\n"
    );
}

#[test]
fn many_small_expansions_fit_the_budget() {
    let mut src = String::from("#define ONE 1\n#define MANY ");
    src.push_str(&"ONE+".repeat(20_000));
    src.push_str("0\nMANY");
    let out = text(&src);
    assert_eq!(out.lines().last().map(str::len), Some(20_000 * 2 + 1));
}
