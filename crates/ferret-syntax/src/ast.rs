//! The syntax tree of a bpftrace program. Every node carries the [`Span`] it
//! was parsed from so later stages can point errors at the source.

use crate::Span;

/// A whole script: probes in source order, and the top-level items around
/// them. Macros are already expanded into the probes that use them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub probes: Vec<Probe>,
    /// The `config = { ... }` block's settings, in order.
    pub config: Vec<ConfigItem>,
    /// `let @m = hash(N);` declarations.
    pub map_decls: Vec<MapDecl>,
    /// `macro name(params) { ... }` definitions.
    pub macros: Vec<Macro>,
    /// C definitions (`struct S { .. };`) written before the probes.
    pub c_definitions: Vec<CDefinition>,
}

/// `key = value` in a `config` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    pub key: String,
    pub key_span: Span,
    pub value: ConfigValue,
    pub value_span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigValue {
    Int(u64),
    Str(String),
    Bool(bool),
    /// A bare word, like `perf` in `stack_mode = perf`.
    Ident(String),
}

/// `let @name = kind(max_entries);`
#[derive(Debug, Clone, PartialEq)]
pub struct MapDecl {
    /// The map's name without `@` (empty for `@`).
    pub name: String,
    pub name_span: Span,
    /// `hash`, `lruhash`, `percpuhash` or `percpulruhash`.
    pub kind: String,
    pub kind_span: Span,
    pub max_entries: u64,
    pub span: Span,
}

/// `macro name(params) { body }`
#[derive(Debug, Clone, PartialEq)]
pub struct Macro {
    pub name: String,
    pub name_span: Span,
    pub params: Vec<MacroParam>,
    /// A block expression (`ExprKind::Block`).
    pub body: Expr,
    pub span: Span,
}

/// One macro parameter: `$x` (a variable the macro may change), `@m` (a
/// map) or `x` (any expression, substituted where `x` appears).
#[derive(Debug, Clone, PartialEq)]
pub struct MacroParam {
    pub kind: MacroParamKind,
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroParamKind {
    Var,
    Map,
    Expr,
}

/// `attach[, attach...] [/predicate/] { body }`
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub attach_points: Vec<AttachPoint>,
    pub predicate: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

/// An attach point exactly as written (`tracepoint:syscalls:sys_enter_*`,
/// `BEGIN`, `i:1s`, `profile:hz:99`). Its structure is interpreted by the
/// compiler, which knows the probe kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachPoint {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// An expression evaluated for its effect: `printf(...)`, `@x++`.
    Expr(Expr),
    /// `target op= value`; `op` is `None` for plain `=`.
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    /// `let $x[: type] [= value];`
    Let {
        name: String,
        name_span: Span,
        ty: Option<TypeName>,
        value: Option<Expr>,
    },
    /// `if (cond) { .. } else ..`; an `else if` is an `else` block holding one `If`.
    If {
        cond: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    /// `unroll(N) { .. }`
    Unroll {
        count: Expr,
        body: Block,
    },
    /// `while (cond) { .. }`
    While {
        cond: Expr,
        body: Block,
    },
    /// `for ($kv : @map) { .. }`
    ForMap {
        var: String,
        var_span: Span,
        map: Expr,
        body: Block,
    },
    /// `for ($i : start..end) { .. }`
    ForRange {
        var: String,
        var_span: Span,
        start: Expr,
        end: Expr,
        body: Block,
    },
    Break,
    Continue,
    Return,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer literal (decimal, hex, octal, `1_000`, `1e6`, durations
    /// like `5ms` already converted to nanoseconds).
    Int(u64),
    /// A string literal with escapes already resolved.
    Str(Vec<u8>),
    Bool(bool),
    /// A bare identifier: a builtin (`pid`, `comm`, `args`, `arg0`) or a
    /// function called without parentheses.
    Ident(String),
    /// `$name`; positional parameters are `$1`.. with the digits as name,
    /// `$#` has the name `#`.
    Var(String),
    /// `@name[keys]`; the bare map `@` has an empty name. `keys` is empty for
    /// a scalar map, and has several entries for `@m[a, b]`.
    Map {
        name: String,
        keys: Vec<Expr>,
    },
    /// `name(args)`
    Call {
        name: String,
        name_span: Span,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `cond ? then : otherwise`
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `expr.field` or `expr->field` (`arrow` tells which was written).
    Field {
        expr: Box<Expr>,
        field: String,
        field_span: Span,
        arrow: bool,
    },
    /// `expr.N` on a tuple.
    TupleIndex {
        expr: Box<Expr>,
        index: u32,
    },
    /// `expr[index]`
    Index {
        expr: Box<Expr>,
        index: Box<Expr>,
    },
    /// `(type) expr`
    Cast {
        ty: TypeName,
        expr: Box<Expr>,
    },
    /// `(a, b, ...)` with at least two elements.
    Tuple(Vec<Expr>),
    /// `(name = value, ...)`: a record, fields in source order.
    Record(Vec<(String, Expr)>),
    /// `x++`, `++x`, `x--`, `--x` on a map or variable.
    IncDec {
        target: Box<Expr>,
        increment: bool,
        prefix: bool,
    },
    /// `sizeof(type)`; `sizeof(expr)` parses as a call.
    SizeofType(TypeName),
    /// `offsetof(type, field.path)`
    Offsetof {
        ty: TypeName,
        fields: Vec<String>,
    },
    /// `{ stmts; value }`: a block whose value is its last expression
    /// (written without `;`), or no value.
    Block {
        stmts: Vec<Stmt>,
        value: Option<Box<Expr>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
    /// `*x`
    Deref,
    /// `&x`
    AddrOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::BitAnd => "&",
            Self::BitOr => "|",
            Self::BitXor => "^",
            Self::Shl => "<<",
            Self::Shr => ">>",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::And => "&&",
            Self::Or => "||",
        }
    }
}

/// A type as written in a cast, `let` or `sizeof`: `uint32`, `struct
/// task_struct *`, `int8[4]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeName {
    /// `uint32`, `struct task_struct`, `string`
    pub name: String,
    /// Number of `*`s after the name.
    pub pointer_depth: u8,
    /// `[N]` after the name.
    pub array_len: Option<u64>,
    pub span: Span,
}

/// A C definition in a script, as bpftrace's tools write them before their
/// probes: `struct S { int a; char b[16]; };`, `union`, `enum`, `typedef`.
#[derive(Debug, Clone, PartialEq)]
pub struct CDefinition {
    pub kind: CDefinitionKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CDefinitionKind {
    Record(CRecord),
    Enum(CEnum),
    /// `typedef TYPE NAME;`
    Typedef {
        ty: CTypeSpec,
        name: String,
    },
}

/// `struct NAME { fields }` or `union NAME { fields }`; nameless when
/// nested anonymously.
#[derive(Debug, Clone, PartialEq)]
pub struct CRecord {
    pub union: bool,
    pub name: Option<String>,
    pub fields: Vec<CField>,
}

/// `enum NAME { A, B = 2 }`: values as written (`None`: one more than the
/// previous).
#[derive(Debug, Clone, PartialEq)]
pub struct CEnum {
    pub name: Option<String>,
    pub values: Vec<(String, Option<i64>)>,
}

/// One declarator of a member: `int a;`, `char *names[4];`, `unsigned x:3;`.
/// An anonymous struct or union member has no name.
#[derive(Debug, Clone, PartialEq)]
pub struct CField {
    pub ty: CTypeSpec,
    pub name: Option<String>,
    /// Width of a bitfield.
    pub bits: Option<u32>,
    pub span: Span,
}

/// A C type in a definition: its base, `*`s and array dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct CTypeSpec {
    pub base: CTypeBase,
    pub pointer_depth: u8,
    /// `[N]` dimensions, outermost first.
    pub array_dims: Vec<u64>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CTypeBase {
    /// `int`, `unsigned long`, `struct path`, `enum pid_type`, `u32`:
    /// qualifiers dropped, words joined by single spaces.
    Named(String),
    /// A struct or union defined in place.
    Record(CRecord),
    /// An enum defined in place.
    Enum(CEnum),
    /// A function (`void (*fn)(int)` is a pointer to one).
    Function,
}
