//! C definitions before the probes (`struct S { int a; char b[16]; };`), as
//! bpftrace's tools write them. What those tools use is accepted: structs,
//! unions, enums and typedefs; members with pointers, arrays, bitfields,
//! nested and anonymous definitions; function pointers (kept opaque);
//! qualifiers and `__attribute__((..))` are read and dropped.

use super::{Failed, PResult, Parser};
use crate::Diagnostic;
use crate::ast::{CDefinition, CDefinitionKind, CEnum, CField, CRecord, CTypeBase, CTypeSpec};
use crate::lexer::TokenKind as T;

/// Words that qualify a type without changing its layout.
const QUALIFIERS: &[&str] = &[
    "const",
    "volatile",
    "restrict",
    "__restrict",
    "__volatile__",
    "static",
    "extern",
    "register",
    "__user",
    "__kernel",
    "__rcu",
    "__percpu",
    "__iomem",
];

/// Words that build C's base types (`unsigned long int`).
const BASE_WORDS: &[&str] = &[
    "unsigned", "signed", "short", "long", "int", "char", "_Bool", "bool", "float", "double",
    "void",
];

impl Parser<'_> {
    /// At `struct NAME {`, `union {`, `enum NAME {`, `struct NAME;` or
    /// `typedef`: a C definition rather than a probe.
    pub(super) fn at_c_definition(&mut self) -> bool {
        match self.peek_kind() {
            T::Ident(w) if w == "typedef" => true,
            T::Ident(w) if matches!(w.as_str(), "struct" | "union" | "enum") => {
                match self.peek_nth(1).kind {
                    T::LBrace => true,
                    T::Ident(_) => matches!(self.peek_nth(2).kind, T::LBrace | T::Semi),
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// One top-level definition. A malformed one is reported and skipped;
    /// `Ok(None)` also stands for a bare declaration (`struct S;`).
    pub(super) fn c_definition(&mut self) -> PResult<Option<CDefinition>> {
        let start = self.peek().span;
        match self.c_definition_inner() {
            Ok(kind) => Ok(kind.map(|kind| CDefinition {
                kind,
                span: self.span_from(start),
            })),
            Err(Failed) if self.too_many_errors() => Err(Failed),
            Err(Failed) => {
                // Skip the whole definition from its start, so its braces
                // pair up.
                self.lookahead.clear();
                self.lexer.set_pos(start.start as usize);
                self.skip_definition();
                Ok(None)
            }
        }
    }

    fn c_definition_inner(&mut self) -> PResult<Option<CDefinitionKind>> {
        let start = self.peek().span;
        if self.at_keyword("typedef") {
            self.bump();
            let base = self.c_base()?;
            let (ty, name, _) = self.c_declarator(base, start)?;
            let Some(name) = name else {
                let found = self.peek().clone();
                let d = self.expected("a name for the typedef", &found);
                self.report(d);
                return Err(Failed);
            };
            self.expect(&T::Semi, "';'")?;
            return Ok(Some(CDefinitionKind::Typedef { ty, name }));
        }
        let kind = match self.c_base()? {
            CTypeBase::Record(r) => Some(CDefinitionKind::Record(r)),
            CTypeBase::Enum(e) => Some(CDefinitionKind::Enum(e)),
            // `struct S;` declares without defining.
            _ => None,
        };
        if !self.eat(&T::Semi) && kind.is_none() {
            let found = self.peek().clone();
            let d = self.expected("';'", &found);
            self.report(d);
            return Err(Failed);
        }
        Ok(kind)
    }

    fn skip_qualifiers(&mut self) {
        loop {
            match self.peek_kind() {
                T::Ident(w) if QUALIFIERS.contains(&w.as_str()) => {
                    self.bump();
                }
                T::Ident(w) if w == "__attribute__" || w == "__aligned" || w == "__packed" => {
                    let word = w.clone();
                    self.bump();
                    if word != "__packed" && self.at(&T::LParen) {
                        self.skip_parens();
                    }
                }
                _ => return,
            }
        }
    }

    /// Skips a balanced `( ... )`.
    fn skip_parens(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek_kind() {
                T::Eof => return,
                T::LParen => depth += 1,
                T::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// The type before a declarator: `unsigned long`, `struct S`,
    /// `struct { .. }`, `enum E { .. }`, a typedef name.
    fn c_base(&mut self) -> PResult<CTypeBase> {
        self.skip_qualifiers();
        let found = self.peek().clone();
        let base = match &found.kind {
            T::Ident(w) if w == "struct" || w == "union" || w == "enum" => {
                let word = w.clone();
                self.bump();
                self.skip_qualifiers();
                let name = match self.peek_kind() {
                    T::Ident(n) => {
                        let n = n.clone();
                        self.bump();
                        Some(n)
                    }
                    _ => None,
                };
                self.skip_qualifiers();
                if self.at(&T::LBrace) {
                    if word == "enum" {
                        CTypeBase::Enum(CEnum {
                            name,
                            values: self.c_enumerators()?,
                        })
                    } else {
                        CTypeBase::Record(CRecord {
                            union: word == "union",
                            name,
                            fields: self.c_fields()?,
                        })
                    }
                } else if let Some(name) = name {
                    CTypeBase::Named(format!("{word} {name}"))
                } else {
                    let found = self.peek().clone();
                    let d = self.expected(&format!("a name or '{{' after '{word}'"), &found);
                    self.report(d);
                    return Err(Failed);
                }
            }
            T::Ident(w) if BASE_WORDS.contains(&w.as_str()) => {
                let mut words = Vec::new();
                loop {
                    self.skip_qualifiers();
                    match self.peek_kind() {
                        T::Ident(w) if BASE_WORDS.contains(&w.as_str()) => {
                            words.push(w.clone());
                            self.bump();
                        }
                        _ => break,
                    }
                }
                CTypeBase::Named(words.join(" "))
            }
            T::Ident(w) => {
                let name = w.clone();
                self.bump();
                CTypeBase::Named(name)
            }
            _ => {
                let d = self.expected("a C type", &found);
                self.report(d);
                return Err(Failed);
            }
        };
        self.skip_qualifiers();
        Ok(base)
    }

    /// `{ members }` of a struct or union.
    fn c_fields(&mut self) -> PResult<Vec<CField>> {
        self.expect(&T::LBrace, "'{'")?;
        let mut fields = Vec::new();
        while !self.eat(&T::RBrace) {
            if self.at(&T::Eof) {
                let found = self.peek().clone();
                let d = self.expected("'}'", &found);
                self.report(d);
                return Err(Failed);
            }
            if self.eat(&T::Semi) {
                continue;
            }
            let start = self.peek().span;
            let base = self.nested(|p| p.c_base())?;
            if self.eat(&T::Semi) {
                // An anonymous struct or union member (a nameless named
                // type declares nothing).
                if matches!(base, CTypeBase::Record(_)) {
                    fields.push(CField {
                        ty: CTypeSpec {
                            base,
                            pointer_depth: 0,
                            array_dims: Vec::new(),
                            span: self.span_from(start),
                        },
                        name: None,
                        bits: None,
                        span: self.span_from(start),
                    });
                }
                continue;
            }
            loop {
                let decl_start = self.peek().span;
                let (ty, name, bits) = self.c_declarator(base.clone(), start)?;
                if name.is_none() && bits.is_none() {
                    let found = self.peek().clone();
                    let d = self.expected("a member name", &found);
                    self.report(d);
                    return Err(Failed);
                }
                fields.push(CField {
                    ty,
                    name,
                    bits,
                    span: self.span_from(decl_start),
                });
                if !self.eat(&T::Comma) {
                    break;
                }
            }
            // Like C compilers, forgive a missing ';' before the '}'.
            if !self.at(&T::RBrace) {
                self.expect(&T::Semi, "';'")?;
            }
        }
        Ok(fields)
    }

    /// `{ A, B = 2, C = -1 }` of an enum.
    fn c_enumerators(&mut self) -> PResult<Vec<(String, Option<i64>)>> {
        self.expect(&T::LBrace, "'{'")?;
        let mut values = Vec::new();
        while !self.eat(&T::RBrace) {
            let found = self.peek().clone();
            let T::Ident(name) = found.kind else {
                let d = self.expected("an enumerator name", &found);
                self.report(d);
                return Err(Failed);
            };
            self.bump();
            let value = if self.eat(&T::Assign) {
                let negative = self.eat(&T::Minus);
                let found = self.peek().clone();
                let T::Int(n) = found.kind else {
                    let d = self
                        .expected("an integer", &found)
                        .with_help("enumerator values must be integer literals");
                    self.report(d);
                    return Err(Failed);
                };
                self.bump();
                Some(if negative {
                    (n as i64).wrapping_neg()
                } else {
                    n as i64
                })
            } else {
                None
            };
            values.push((name, value));
            if !self.eat(&T::Comma) {
                self.expect(&T::RBrace, "'}'")?;
                break;
            }
        }
        Ok(values)
    }

    /// `**name[2][3] : bits` or `(*name)(params)` after a base type.
    fn c_declarator(
        &mut self,
        base: CTypeBase,
        start: crate::Span,
    ) -> PResult<(CTypeSpec, Option<String>, Option<u32>)> {
        let mut base = base;
        let mut pointer_depth: u8 = 0;
        while self.eat(&T::Star) {
            pointer_depth = pointer_depth.saturating_add(1);
            self.skip_qualifiers();
        }
        let mut name = None;
        if self.at(&T::LParen) {
            // A function pointer: `ret (*name)(params)`; the return type
            // does not matter, the member is a pointer.
            self.bump();
            pointer_depth = 0;
            while self.eat(&T::Star) {
                pointer_depth = pointer_depth.saturating_add(1);
            }
            if let T::Ident(n) = self.peek_kind() {
                name = Some(n.clone());
                self.bump();
            }
            self.expect(&T::RParen, "')'")?;
            if self.at(&T::LParen) {
                self.skip_parens();
            }
            base = CTypeBase::Function;
        } else if let T::Ident(n) = self.peek_kind() {
            name = Some(n.clone());
            self.bump();
        }
        let mut array_dims = Vec::new();
        while self.eat(&T::LBracket) {
            let found = self.peek().clone();
            match found.kind {
                T::Int(n) => {
                    self.bump();
                    array_dims.push(n);
                }
                // A flexible array member takes no room.
                T::RBracket => array_dims.push(0),
                _ => {
                    let d = self.expected("an array length", &found);
                    self.report(d);
                    return Err(Failed);
                }
            }
            self.expect(&T::RBracket, "']'")?;
        }
        let mut bits = None;
        if self.eat(&T::Colon) {
            let found = self.peek().clone();
            let T::Int(n) = found.kind else {
                let d = self.expected("a bitfield width", &found);
                self.report(d);
                return Err(Failed);
            };
            self.bump();
            if n > 64 {
                self.report(
                    Diagnostic::error(found.span, format!("bitfield width {n} is too large"))
                        .with_label("at most 64 bits"),
                );
                return Err(Failed);
            }
            bits = Some(n as u32);
        }
        self.skip_qualifiers();
        Ok((
            CTypeSpec {
                base,
                pointer_depth,
                array_dims,
                span: self.span_from(start),
            },
            name,
            bits,
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::{CDefinitionKind, CTypeBase, Program};
    use crate::{SourceFile, parse};

    fn program(src: &str) -> Program {
        let file = SourceFile::new("stdin", src);
        parse(&file).unwrap_or_else(|errors| {
            let rendered: Vec<String> = errors.iter().map(|d| d.render(&file)).collect();
            panic!("errors for {src:?}:\n{}", rendered.join("\n"))
        })
    }

    fn errors(src: &str) -> Vec<String> {
        let file = SourceFile::new("stdin", src);
        match parse(&file) {
            Ok(_) => panic!("{src:?} parsed"),
            Err(e) => e.iter().map(|d| d.render(&file)).collect(),
        }
    }

    /// `name: type` per field, types as `base*[N]:bits`.
    fn fields(kind: &CDefinitionKind) -> Vec<String> {
        let CDefinitionKind::Record(r) = kind else {
            panic!("not a record: {kind:?}");
        };
        r.fields
            .iter()
            .map(|f| {
                let base = match &f.ty.base {
                    CTypeBase::Named(n) => n.clone(),
                    CTypeBase::Record(r) => {
                        format!(
                            "{}{{{}}}",
                            if r.union { "union" } else { "struct" },
                            r.fields.len()
                        )
                    }
                    CTypeBase::Enum(_) => "enum{}".into(),
                    CTypeBase::Function => "fn".into(),
                };
                let dims: String = f.ty.array_dims.iter().map(|d| format!("[{d}]")).collect();
                let bits = f.bits.map(|b| format!(":{b}")).unwrap_or_default();
                format!(
                    "{}: {base}{}{dims}{bits}",
                    f.name.as_deref().unwrap_or("_"),
                    "*".repeat(f.ty.pointer_depth.into())
                )
            })
            .collect()
    }

    #[test]
    fn structs_before_probes() {
        let p = program(
            "struct foo { int a; char b[16] }
             struct nameidata {
                 struct path path;   // comment
                 const unsigned long *p, **pp;
                 unsigned int flags : 3, other:5;
                 void (*callback)(int, char *);
                 union { int x; long y; };
                 struct { u32 lo; } inner;
                 char name[2][8];
             };
             begin { exit(); }",
        );
        assert_eq!(p.probes.len(), 1);
        assert_eq!(p.c_definitions.len(), 2);
        assert_eq!(fields(&p.c_definitions[0].kind), ["a: int", "b: char[16]"]);
        assert_eq!(
            fields(&p.c_definitions[1].kind),
            [
                "path: struct path",
                "p: unsigned long*",
                "pp: unsigned long**",
                "flags: unsigned int:3",
                "other: unsigned int:5",
                "callback: fn*",
                "_: union{2}",
                "inner: struct{1}",
                "name: char[2][8]",
            ]
        );
    }

    #[test]
    fn enums_typedefs_and_declarations() {
        let p = program(
            "enum color { RED, GREEN = 5, BLUE = -1, };
             typedef unsigned long long u64_t;
             struct later;
             union u { int a; };
             BEGIN { }",
        );
        assert_eq!(p.c_definitions.len(), 3);
        let CDefinitionKind::Enum(e) = &p.c_definitions[0].kind else {
            panic!("enum");
        };
        assert_eq!(e.name.as_deref(), Some("color"));
        assert_eq!(
            e.values,
            [
                ("RED".to_string(), None),
                ("GREEN".to_string(), Some(5)),
                ("BLUE".to_string(), Some(-1))
            ]
        );
        let CDefinitionKind::Typedef { ty, name } = &p.c_definitions[1].kind else {
            panic!("typedef");
        };
        assert_eq!(name, "u64_t");
        assert_eq!(ty.base, CTypeBase::Named("unsigned long long".into()));
    }

    #[test]
    fn malformed_definition_is_reported_and_skipped() {
        let e = errors("struct foo { int a[x]; };\nbegin { exit(); }");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("expected an array length but found identifier 'x'"),
            "{e:?}"
        );
    }
}
