//! Config blocks, map declarations, macros and block expressions.

use super::error_tests::errors;
use super::tests::{program, sexp, stmt_sexp};
use crate::ast::{ConfigValue, MacroParamKind, StmtKind};

/// The body of the single probe, one statement per entry.
fn body(src: &str) -> Vec<String> {
    let p = program(src);
    assert_eq!(p.probes.len(), 1, "{src}");
    p.probes[0].body.stmts.iter().map(stmt_sexp).collect()
}

fn check_errors(src: &str, expected: &[&str]) {
    assert_eq!(errors(src), expected, "errors for {src:?}");
}

#[test]
fn config_block() {
    let p = program(
        "config = { max_map_keys = 2; stack_mode = perf; str_trunc_trailer = \"~\"; print_maps_on_exit = false }\nbegin {}",
    );
    let items: Vec<(String, ConfigValue)> =
        p.config.into_iter().map(|c| (c.key, c.value)).collect();
    assert_eq!(
        items,
        [
            ("max_map_keys".into(), ConfigValue::Int(2)),
            ("stack_mode".into(), ConfigValue::Ident("perf".into())),
            ("str_trunc_trailer".into(), ConfigValue::Str("~".into())),
            ("print_maps_on_exit".into(), ConfigValue::Bool(false)),
        ]
    );
    // A trailing ';' inside and after the block is fine; so is an empty one.
    assert_eq!(
        program("config = { missing_probes = warn; };\nbegin {}")
            .config
            .len(),
        1
    );
    assert!(program("config = {}\nbegin {}").config.is_empty());
}

#[test]
fn config_after_a_probe() {
    check_errors(
        "begin {}\nconfig = { max_strlen = 64 }",
        &[
            "stdin:2:1: error: config must appear before probes and macros",
            "  |",
            "2 | config = { max_strlen = 64 }",
            "  | ^^^^^^ too late for a config block",
            "  |",
            "  = help: move the config block to the top of the script",
        ],
    );
}

#[test]
fn duplicate_config() {
    check_errors(
        "config = { max_strlen = 64 }\nconfig = { max_strlen = 32 }\nbegin {}",
        &[
            "stdin:2:1: error: duplicate config block",
            "  |",
            "2 | config = { max_strlen = 32 }",
            "  | ^^^^^^ second config block",
            "  |",
            "  = help: merge it into the first one, at line 1",
        ],
    );
}

#[test]
fn config_needs_separators() {
    check_errors(
        "config = { max_strlen = 64 stack_mode = raw }\nbegin {}",
        &[
            "stdin:1:28: error: expected ';' or '}' but found identifier 'stack_mode'",
            "  |",
            "1 | config = { max_strlen = 64 stack_mode = raw }",
            "  |                            ^^^^^^^^^^ expected ';' or '}'",
        ],
    );
}

#[test]
fn map_declarations() {
    let p = program("let @a = lruhash(100);\nlet @b = percpuhash(8);\nbegin { @a[1] = 1; }");
    let decls: Vec<(String, String, u64)> = p
        .map_decls
        .into_iter()
        .map(|d| (d.name, d.kind, d.max_entries))
        .collect();
    assert_eq!(
        decls,
        [
            ("a".into(), "lruhash".into(), 100),
            ("b".into(), "percpuhash".into(), 8)
        ]
    );
}

#[test]
fn map_declaration_errors() {
    check_errors(
        "let @a = lruhsh(10);\nbegin {}",
        &[
            "stdin:1:10: error: invalid map type 'lruhsh'",
            "  |",
            "1 | let @a = lruhsh(10);",
            "  |          ^^^^^^ not a map type",
            "  |",
            "  = help: did you mean 'lruhash'?",
        ],
    );
    check_errors(
        "let @a = hash(0);\nbegin {}",
        &[
            "stdin:1:15: error: a map declaration takes its maximum number of entries",
            "  |",
            "1 | let @a = hash(0);",
            "  |               ^ expected a number from 1 to 4294967295",
            "  |",
            "  = help: declare a map with its kind and size, like 'let @m = lruhash(100);'",
        ],
    );
    check_errors(
        "begin { let @a = hash(2); }",
        &[
            "stdin:1:13: error: maps are declared at the top level",
            "  |",
            "1 | begin { let @a = hash(2); }",
            "  |             ^^ a map cannot be declared here",
            "  |",
            "  = help: declare it before the probes, like 'let @m = hash(100);', or create it by assigning to it: '@m = ...'",
        ],
    );
}

#[test]
fn macro_definitions() {
    let p = program("macro add($a, @m, x) { $a += x; @m = 1; $a }\nbegin {}");
    assert_eq!(p.macros.len(), 1);
    let m = &p.macros[0];
    assert_eq!(m.name, "add");
    let kinds: Vec<(MacroParamKind, &str)> =
        m.params.iter().map(|p| (p.kind, p.name.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (MacroParamKind::Var, "a"),
            (MacroParamKind::Map, "m"),
            (MacroParamKind::Expr, "x")
        ]
    );
    assert_eq!(sexp(&m.body), "{(+= $a x); (= @m 1); => $a}");
}

#[test]
fn block_expressions() {
    assert_eq!(
        body("begin { $x = { let $y = 1; $y + 1 }; { printf(\"a\") } print($x); }"),
        [
            "(= $x {(let $y 1); => (+ $y 1)})",
            "{=> printf(\"a\")}",
            "print($x)"
        ]
    );
    // Ending in ';', the block has no value.
    assert_eq!(body("begin { { 1; } }"), ["{1}"]);
}

#[test]
fn macros_expand_with_hygiene() {
    let src = "macro inc($x) { $x += 1; $x }\n\
               macro add_one(x) { $y = x + 1; $y }\n\
               macro set(@m) { @m[1] = 2; }\n\
               macro one() { 1 }\n\
               begin { $a = 1; inc($a); $b = add_one($a); set(@c); $d = one; $e = one(); }";
    assert_eq!(
        body(src),
        [
            "(= $a 1)",
            "{(+= $a 1); => $a}",
            "(= $b {(= $$add_one_y (+ {=> $a} 1)); => $$add_one_y})",
            "{(= @c[1] 2)}",
            "(= $d {=> 1})",
            "(= $e {=> 1})",
        ]
    );
}

#[test]
fn nested_macros_get_their_own_names() {
    let src = "macro add1(x) { $t = x; $t + 1 }\n\
               macro add2(y) { $t = add1(y); $t + 1 }\n\
               begin { print(add2(5)); }";
    assert_eq!(
        body(src),
        ["print({(= $$add2_t {(= $$add1_2_t 5); => (+ $$add1_2_t 1)}); => (+ $$add2_t 1)})"]
    );
}

#[test]
fn macro_argument_idents_shadow_macros() {
    let src = "macro add() { 2 }\nmacro ident(add) { add }\nbegin { print(ident(1)); }";
    assert_eq!(body(src), ["print({=> 1})"]);
}

#[test]
fn macro_errors() {
    check_errors(
        "macro a() { b() }\nmacro b() { a() }\nbegin { a(); }",
        &[
            "stdin:2:13: error: recursive macro call: a > b > a",
            "  |",
            "2 | macro b() { a() }",
            "  |             ^^^ calls a macro that is being expanded",
            "  |",
            "  = help: macros cannot call themselves, directly or through others",
        ],
    );
    check_errors(
        "macro f(x) { x }\nbegin { f(1, 2); }",
        &[
            "stdin:2:9: error: macro f() takes 1 argument, 2 given",
            "  |",
            "2 | begin { f(1, 2); }",
            "  |         ^^^^^^^ wrong number of arguments to f()",
            "  |",
            "  = help: f is defined with (x)",
        ],
    );
    check_errors(
        "macro inc($x) { $x++ }\nbegin { @a = 1; inc(@a); }",
        &[
            "stdin:2:21: error: macro inc() expects a variable for $x but got a map",
            "  |",
            "2 | begin { @a = 1; inc(@a); }",
            "  |                     ^^ wrong kind of argument",
            "  |",
            "  = help: inc is defined with ($x)",
        ],
    );
    check_errors(
        "macro bad() { @x++ }\nbegin { bad(); }",
        &[
            "stdin:1:15: error: unhygienic access to map @x",
            "  |",
            "1 | macro bad() { @x++ }",
            "  |               ^^ not a parameter of this macro",
            "  |",
            "  = help: maps must be passed into the macro as arguments: add @x to the parameters of 'bad'",
        ],
    );
    check_errors(
        "macro f($x) { let $x = 1; }\nbegin { $a = 0; f($a); }",
        &[
            "stdin:1:19: error: variable declaration shadows macro argument $x",
            "  |",
            "1 | macro f($x) { let $x = 1; }",
            "  |                   ^^ declared here",
            "  |",
            "  = help: use another name inside macro 'f'",
        ],
    );
    check_errors(
        "macro f(x) { x }\nmacro f(y) { y }\nbegin { }",
        &[
            "stdin:2:7: error: redefinition of macro 'f'",
            "  |",
            "2 | macro f(y) { y }",
            "  |       ^ defined again here",
            "  |",
            "  = help: rename one of them, or give them different parameters",
            "  = note: the first definition takes (x)",
        ],
    );
}

#[test]
fn macros_overload_by_parameter_kind() {
    let src = "macro m($x) { 1 }\nmacro m(x) { 2 }\nbegin { $v = 0; print(m($v)); print(m(5)); }";
    assert_eq!(
        body(src)[1..],
        ["(= $v 0)", "print({=> 1})", "print({=> 2})"][1..]
    );
    let p = program(src);
    assert!(matches!(
        p.probes[0].body.stmts[0].kind,
        StmtKind::Assign { .. }
    ));
}
