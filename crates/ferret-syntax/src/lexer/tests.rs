use super::{IntError, Lexer, TokenKind as T, parse_int};
use crate::Span;

fn kinds(src: &str) -> Vec<T> {
    let mut lexer = Lexer::new(src);
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token();
        if token.kind == T::Eof {
            return out;
        }
        out.push(token.kind);
    }
}

fn messages(src: &str) -> Vec<String> {
    let mut lexer = Lexer::new(src);
    while lexer.next_token().kind != T::Eof {}
    lexer.take_diags().into_iter().map(|d| d.message).collect()
}

fn ident(s: &str) -> T {
    T::Ident(s.to_owned())
}

#[test]
fn operators_take_the_longest_match() {
    assert_eq!(
        kinds("<<= >>= << >> <= >= < > == != = && || & | ^ ~ !"),
        [
            T::ShlAssign,
            T::ShrAssign,
            T::Shl,
            T::Shr,
            T::Le,
            T::Ge,
            T::Lt,
            T::Gt,
            T::EqEq,
            T::Ne,
            T::Assign,
            T::AndAnd,
            T::OrOr,
            T::Amp,
            T::Pipe,
            T::Caret,
            T::Tilde,
            T::Bang,
        ]
    );
    assert_eq!(
        kinds("+= -= *= /= %= &= |= ^= ++ -- -> .. . + - * % ? : ; , ( ) [ ]"),
        [
            T::PlusAssign,
            T::MinusAssign,
            T::StarAssign,
            T::SlashAssign,
            T::PercentAssign,
            T::AmpAssign,
            T::PipeAssign,
            T::CaretAssign,
            T::PlusPlus,
            T::MinusMinus,
            T::Arrow,
            T::DotDot,
            T::Dot,
            T::Plus,
            T::Minus,
            T::Star,
            T::Percent,
            T::Question,
            T::Colon,
            T::Semi,
            T::Comma,
            T::LParen,
            T::RParen,
            T::LBracket,
            T::RBracket,
        ]
    );
}

#[test]
fn slash_before_brace_ends_a_predicate() {
    assert_eq!(kinds("a / b"), [ident("a"), T::Slash, ident("b")]);
    assert_eq!(kinds("a/ {"), [ident("a"), T::PredEnd, T::LBrace]);
    assert_eq!(kinds("a/\n /* c */ {"), [ident("a"), T::PredEnd, T::LBrace]);
    assert_eq!(kinds("a/"), [ident("a"), T::PredEnd]);
}

#[test]
fn names_variables_and_maps() {
    assert_eq!(
        kinds("pid _x arg0 $x $1 $# @ @m @_a1"),
        [
            ident("pid"),
            ident("_x"),
            ident("arg0"),
            T::Var("x".into()),
            T::Var("1".into()),
            T::Var("#".into()),
            T::Map(String::new()),
            T::Map("m".into()),
            T::Map("_a1".into()),
        ]
    );
}

#[test]
fn integers() {
    assert_eq!(parse_int("0"), Ok(0));
    assert_eq!(parse_int("123"), Ok(123));
    assert_eq!(parse_int("0x1f"), Ok(31));
    assert_eq!(parse_int("0XFF"), Ok(255));
    assert_eq!(parse_int("0777"), Ok(0o777));
    assert_eq!(parse_int("1_000"), Ok(1000));
    assert_eq!(parse_int("1e6"), Ok(1_000_000));
    assert_eq!(parse_int("2E3"), Ok(2000));
    assert_eq!(parse_int("1e19"), Ok(10_000_000_000_000_000_000));
    assert_eq!(parse_int("1e20"), Err(IntError::TooLarge));
    assert_eq!(parse_int("1e99999999999"), Err(IntError::TooLarge));
    for suffix in ["u", "l", "ul", "lu", "ll", "ull", "llu", "U", "UL", "ULL"] {
        assert_eq!(parse_int(&format!("7{suffix}")), Ok(7), "{suffix}");
    }
    assert_eq!(parse_int("0x10ul"), Ok(16));
    assert_eq!(parse_int("5ns"), Ok(5));
    assert_eq!(parse_int("5us"), Ok(5_000));
    assert_eq!(parse_int("5ms"), Ok(5_000_000));
    assert_eq!(parse_int("5s"), Ok(5_000_000_000));
    assert_eq!(parse_int("2m"), Ok(120_000_000_000));
    assert_eq!(parse_int("1h"), Ok(3_600_000_000_000));
    assert_eq!(parse_int("1d"), Ok(86_400_000_000_000));
    assert_eq!(parse_int("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(parse_int("18446744073709551616"), Err(IntError::TooLarge));
    assert_eq!(parse_int("0xffffffffffffffff"), Ok(u64::MAX));
    assert_eq!(parse_int("0x1ffffffffffffffff"), Err(IntError::TooLarge));
    assert_eq!(parse_int("99999999999d"), Err(IntError::TooLarge));
    assert_eq!(parse_int("09"), Err(IntError::BadDigit('9')));
    assert_eq!(parse_int("0x"), Err(IntError::NoDigits));
    assert_eq!(parse_int("1e"), Err(IntError::BadSuffix("e".into())));
    assert_eq!(parse_int("12abc"), Err(IntError::BadSuffix("abc".into())));
}

#[test]
fn numbers_stop_at_dots() {
    assert_eq!(
        kinds("0..10 $kv.0.1"),
        [
            T::Int(0),
            T::DotDot,
            T::Int(10),
            T::Var("kv".into()),
            T::Dot,
            T::Int(0),
            T::Dot,
            T::Int(1),
        ]
    );
}

#[test]
fn strings_resolve_escapes() {
    let text = r#""a\n\t\r\\\"\0\101\x41\x4a\7é""#;
    assert_eq!(
        kinds(text),
        [T::Str(b"a\n\t\r\\\"\0AAJ\x07\xc3\xa9".to_vec())]
    );
    assert_eq!(kinds(r#""""#), [T::Str(Vec::new())]);
}

#[test]
fn string_errors() {
    assert_eq!(messages("\"abc"), ["unterminated string"]);
    assert_eq!(messages("\"abc\ndef"), ["unterminated string"]);
    assert_eq!(messages(r#""\q""#), [r"unknown escape sequence '\q'"]);
    assert_eq!(
        messages(r#""\777""#),
        [r"octal escape '\777' is out of range"]
    );
    assert_eq!(messages(r#""\xg""#), [r"'\x' escape has no hex digits"]);
    assert_eq!(messages("\"\\"), ["unterminated string"]);
}

#[test]
fn trivia_is_skipped() {
    assert_eq!(
        kinds("#!/bin/bpftrace\n#include <x.h>\n  #define A \\\n B\na // c\n/* d\n */ b"),
        [ident("a"), ident("b")]
    );
    // `#` only starts a directive at the beginning of a line.
    assert_eq!(kinds("a # b"), [ident("a"), ident("b")]);
    assert_eq!(messages("a # b"), ["invalid character '#'"]);
    assert_eq!(messages("/* never closed"), ["unterminated comment"]);
}

#[test]
fn invalid_characters_are_reported_and_skipped() {
    assert_eq!(kinds("a ` b € c"), [ident("a"), ident("b"), ident("c")]);
    assert_eq!(
        messages("` 'x'"),
        [
            "invalid character '`'",
            "strings are written in double quotes, not single quotes"
        ]
    );
    assert_eq!(messages("a ' b"), ["invalid character '\\''"]);
    assert_eq!(messages("$"), ["expected a variable name after '$'"]);
}

#[test]
fn lexer_errors_are_capped() {
    assert_eq!(messages(&"`".repeat(1000)).len(), super::MAX_DIAGS);
}

#[test]
fn attach_points_read_raw() {
    let mut lexer = Lexer::new("  uprobe:/bin/bash:readline/pid/ {");
    assert_eq!(
        lexer.attach_point(),
        Some(("uprobe:/bin/bash:readline".to_owned(), Span::new(2, 27)))
    );
    assert_eq!(lexer.next_token().kind, T::Slash);

    let mut lexer = Lexer::new("uprobe:/a:\"x y\" {");
    assert_eq!(
        lexer.attach_point().map(|a| a.0).as_deref(),
        Some("uprobe:/a:\"x y\"")
    );

    let mut lexer = Lexer::new("{ }");
    assert_eq!(lexer.attach_point(), None);
    assert_eq!(lexer.pos(), 0);

    let mut lexer = Lexer::new("uprobe:/a:\"unterminated\n{");
    assert_eq!(
        lexer.attach_point().map(|a| a.0).as_deref(),
        Some("uprobe:/a:\"unterminated")
    );
    assert!(lexer.saw_unterminated());
}
