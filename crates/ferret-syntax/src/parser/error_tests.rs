//! Rendered parse errors, compared exactly.

use crate::{SourceFile, parse};

/// Every error of `src`, rendered, as lines.
pub(super) fn errors(src: &str) -> Vec<String> {
    let file = SourceFile::new("stdin", src);
    match parse(&file) {
        Ok(_) => panic!("{src:?} parsed without errors"),
        Err(errors) => errors
            .iter()
            .flat_map(|d| {
                d.render(&file)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

fn check(src: &str, expected: &[&str]) {
    assert_eq!(errors(src), expected, "errors for {src:?}");
}

#[test]
fn missing_semicolon() {
    check(
        "BEGIN { @x = 1 printf(\"hi\") }",
        &[
            "stdin:1:16: error: expected ';' but found identifier 'printf'",
            "  |",
            "1 | BEGIN { @x = 1 printf(\"hi\") }",
            "  |                ^^^^^^ expected ';'",
        ],
    );
}

#[test]
fn unclosed_brace_at_end_of_file() {
    check(
        "BEGIN { printf(\"hi\");",
        &[
            "stdin:1:7: error: expected '}' but found end of file",
            "  |",
            "1 | BEGIN { printf(\"hi\");",
            "  |       ^ this '{' is not closed",
            "  |",
            "  = help: add '}' to close the block",
        ],
    );
}

#[test]
fn unclosed_brace_of_second_probe() {
    check(
        "BEGIN { $x = 1 }\nEND { printf(\"%d\\n\", $x) ",
        &[
            "stdin:2:5: error: expected '}' but found end of file",
            "  |",
            "2 | END { printf(\"%d\\n\", $x) ",
            "  |     ^ this '{' is not closed",
            "  |",
            "  = help: add '}' to close the block",
        ],
    );
}

#[test]
fn assignment_in_predicate() {
    check(
        "kprobe:f /pid = 1/ { }",
        &[
            "stdin:1:15: error: expected '/' but found '='",
            "  |",
            "1 | kprobe:f /pid = 1/ { }",
            "  |               ^ expected '/' to end the predicate",
            "  |",
            "  = help: did you mean '=='?",
        ],
    );
}

#[test]
fn assignment_in_if_condition() {
    check(
        "BEGIN { if ($x = 1) { } }",
        &[
            "stdin:1:16: error: expected ')' but found '='",
            "  |",
            "1 | BEGIN { if ($x = 1) { } }",
            "  |                ^ expected ')'",
            "  |",
            "  = help: did you mean '=='?",
        ],
    );
}

#[test]
fn missing_predicate_end() {
    check(
        "kprobe:f /pid == 1 { @x = 1; }",
        &[
            "stdin:1:20: error: expected '/' but found '{'",
            "  |",
            "1 | kprobe:f /pid == 1 { @x = 1; }",
            "  |                    ^ expected '/' to end the predicate",
            "  |",
            "  = help: a predicate is closed by '/' before the '{', like '/pid == 1/'",
        ],
    );
}

#[test]
fn unterminated_string() {
    check(
        "BEGIN { printf(\"hello); }",
        &[
            "stdin:1:16: error: unterminated string",
            "  |",
            "1 | BEGIN { printf(\"hello); }",
            "  |                ^^^^^^^^^^ this string is never closed",
            "  |",
            "  = help: close it with '\"' on the same line",
        ],
    );
}

#[test]
fn invalid_character() {
    check(
        "BEGIN { $x = 1 € 2; }",
        &[
            "stdin:1:16: error: invalid character '€'",
            "  |",
            "1 | BEGIN { $x = 1 € 2; }",
            "  |                ^ not valid here",
        ],
    );
}

#[test]
fn single_quotes() {
    check(
        "BEGIN { printf('a'); }",
        &[
            "stdin:1:16: error: strings are written in double quotes, not single quotes",
            "  |",
            "1 | BEGIN { printf('a'); }",
            "  |                ^^^ single-quoted",
            "  |",
            "  = help: write \"a\"",
        ],
    );
}

#[test]
fn number_too_large() {
    check(
        "BEGIN { @x = 99999999999999999999; }",
        &[
            "stdin:1:14: error: integer literal '99999999999999999999' is too large for 64 bits",
            "  |",
            "1 | BEGIN { @x = 99999999999999999999; }",
            "  |              ^^^^^^^^^^^^^^^^^^^^ does not fit in 64 bits",
            "  |",
            "  = help: the largest integer is 18446744073709551615",
        ],
    );
}

#[test]
fn bad_number_suffix() {
    check(
        "BEGIN { @x = 5xyz; }",
        &[
            "stdin:1:14: error: invalid suffix 'xyz' on integer literal '5xyz'",
            "  |",
            "1 | BEGIN { @x = 5xyz; }",
            "  |              ^^^^ unknown suffix",
            "  |",
            "  = help: integers take duration suffixes ns, us, ms, s, m, h, d or C suffixes u, l, ul, ll, ull",
        ],
    );
}

#[test]
fn bad_octal_digit() {
    check(
        "BEGIN { @x = 09; }",
        &[
            "stdin:1:14: error: invalid digit '9' in octal literal '09'",
            "  |",
            "1 | BEGIN { @x = 09; }",
            "  |              ^^ a leading '0' makes a number octal",
        ],
    );
}

#[test]
fn empty_program() {
    check(
        "",
        &[
            "stdin:1:1: error: no probes in program",
            "  |",
            "1 | ",
            "  | ^ expected a probe",
            "  |",
            "  = help: a program is one or more probes, like 'begin { printf(\"hello\\n\"); }'",
        ],
    );
}

#[test]
fn comments_only() {
    check(
        "// nothing here\n",
        &[
            "stdin:1:1: error: no probes in program",
            "  |",
            "1 | // nothing here",
            "  | ^ expected a probe",
            "  |",
            "  = help: a program is one or more probes, like 'begin { printf(\"hello\\n\"); }'",
        ],
    );
}

#[test]
fn probe_without_body() {
    check(
        "BEGIN",
        &[
            "stdin:1:1: error: expected '{' but found end of file",
            "  |",
            "1 | BEGIN",
            "  | ^^^^^ this probe has no body",
            "  |",
            "  = help: add a block, like '{ printf(\"hit\\n\"); }'",
        ],
    );
}

#[test]
fn probe_with_predicate_without_body() {
    check(
        "BEGIN /pid == 1/",
        &[
            "stdin:1:1: error: expected '{' but found end of file",
            "  |",
            "1 | BEGIN /pid == 1/",
            "  | ^^^^^^^^^^^^^^^^ this probe has no body",
            "  |",
            "  = help: add a block, like '{ printf(\"hit\\n\"); }'",
        ],
    );
}

#[test]
fn two_probes_missing_comma() {
    check(
        "BEGIN END { }",
        &[
            "stdin:1:7: error: expected '{' but found identifier 'END'",
            "  |",
            "1 | BEGIN END { }",
            "  |       ^^^ expected '{'",
            "  |",
            "  = help: every probe needs a body '{ ... }'; separate attach points sharing one body with ','",
        ],
    );
}

#[test]
fn assign_to_identifier() {
    check(
        "BEGIN { x = 1; }",
        &[
            "stdin:1:9: error: cannot assign to this expression",
            "  |",
            "1 | BEGIN { x = 1; }",
            "  |         ^ not a map or variable",
            "  |",
            "  = help: did you mean the variable '$x' or the map '@x'?",
        ],
    );
}

#[test]
fn missing_expression() {
    check(
        "BEGIN { @x = ; }",
        &[
            "stdin:1:14: error: expected an expression but found ';'",
            "  |",
            "1 | BEGIN { @x = ; }",
            "  |              ^ expected an expression",
        ],
    );
}

#[test]
fn missing_close_paren() {
    check(
        "BEGIN { printf(\"a\" }",
        &[
            "stdin:1:20: error: expected ')' but found '}'",
            "  |",
            "1 | BEGIN { printf(\"a\" }",
            "  |                    ^ expected ')'",
        ],
    );
}

#[test]
fn else_without_if() {
    check(
        "BEGIN { else { } }",
        &[
            "stdin:1:9: error: 'else' without 'if'",
            "  |",
            "1 | BEGIN { else { } }",
            "  |         ^^^^ no 'if' before this",
            "  |",
            "  = help: 'else' must directly follow the block of an 'if'",
        ],
    );
}

#[test]
fn for_needs_variable() {
    check(
        "BEGIN { for (x : @m) { } }",
        &[
            "stdin:1:14: error: expected a variable like '$x' after 'for (' but found identifier 'x'",
            "  |",
            "1 | BEGIN { for (x : @m) { } }",
            "  |              ^ expected a variable",
        ],
    );
}

#[test]
fn for_needs_map_or_range() {
    check(
        "BEGIN { for ($x : 5) { } }",
        &[
            "stdin:1:19: error: expected a map or a range to iterate over",
            "  |",
            "1 | BEGIN { for ($x : 5) { } }",
            "  |                   ^ not a map or range",
            "  |",
            "  = help: write 'for ($kv : @map)' or 'for ($i : 0..10)'",
        ],
    );
}

#[test]
fn stray_close_brace() {
    check(
        "BEGIN { } }",
        &[
            "stdin:1:11: error: expected an attach point like 'begin' or 'kprobe:f' but found '}'",
            "  |",
            "1 | BEGIN { } }",
            "  |           ^ expected a probe",
            "  |",
            "  = help: this '}' closes nothing: remove it",
        ],
    );
}

#[test]
fn several_errors_are_collected() {
    check(
        "BEGIN { 1 +; }\nEND { 2 *; }",
        &[
            "stdin:1:12: error: expected an expression but found ';'",
            "  |",
            "1 | BEGIN { 1 +; }",
            "  |            ^ expected an expression",
            "stdin:2:10: error: expected an expression but found ';'",
            "  |",
            "2 | END { 2 *; }",
            "  |          ^ expected an expression",
        ],
    );
}

#[test]
fn unknown_escape() {
    check(
        "BEGIN { $x = \"a\\q\"; }",
        &[
            "stdin:1:16: error: unknown escape sequence '\\q'",
            "  |",
            "1 | BEGIN { $x = \"a\\q\"; }",
            "  |                ^^ unknown escape",
            "  |",
            "  = help: known escapes: \\n \\t \\r \\\\ \\\" \\0nn (octal) \\xnn (hex)",
        ],
    );
}

#[test]
fn increment_of_literal() {
    check(
        "BEGIN { 5++; }",
        &[
            "stdin:1:9: error: '++' needs a map or variable",
            "  |",
            "1 | BEGIN { 5++; }",
            "  |         ^ not a map or variable",
        ],
    );
}

#[test]
fn bad_character_in_attach_point() {
    check(
        "kprobe:f=1 { }",
        &[
            "stdin:1:9: error: expected '{' but found '='",
            "  |",
            "1 | kprobe:f=1 { }",
            "  |         ^ expected '{'",
            "  |",
            "  = help: '=' cannot appear in an attach point",
        ],
    );
}

#[test]
fn ternary_without_colon() {
    check(
        "BEGIN { $x = a ? b; }",
        &[
            "stdin:1:19: error: expected ':' but found ';'",
            "  |",
            "1 | BEGIN { $x = a ? b; }",
            "  |                   ^ expected ':'",
        ],
    );
}

#[test]
fn unterminated_comment() {
    check(
        "/* open\nBEGIN { }",
        &[
            "stdin:1:1: error: unterminated comment",
            "  |",
            "1 | /* open",
            "  | ^^ this comment is never closed",
            "  |",
            "  = help: close it with '*/'",
        ],
    );
}

#[test]
fn multi_line_location() {
    check(
        "BEGIN {\n  @x = 1;\n  @y = @x +;\n}",
        &[
            "stdin:3:12: error: expected an expression but found ';'",
            "  |",
            "3 |   @y = @x +;",
            "  |            ^ expected an expression",
        ],
    );
}

#[test]
fn second_attach_point_without_body() {
    check(
        "BEGIN,\n  kprobe:f",
        &[
            "stdin:1:1: error: expected '{' but found end of file",
            "  |",
            "1 | BEGIN,",
            "  | ^^^^^^ this probe has no body",
            "  |",
            "  = help: add a block, like '{ printf(\"hit\\n\"); }'",
        ],
    );
}

#[test]
fn record_field_without_a_name() {
    check(
        "begin { $r = (a = 1, 2); }",
        &[
            "stdin:1:22: error: expected a field name like 'a' in 'a = value' but found integer '2'",
            "  |",
            "1 | begin { $r = (a = 1, 2); }",
            "  |                      ^ expected a field name",
        ],
    );
}
