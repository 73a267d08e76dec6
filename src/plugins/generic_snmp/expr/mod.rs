//! The value-expression language of the Generic SNMP polling DSL: a small, safe subset
//! of Python expressions, parsed and checked when a document is loaded and evaluated
//! without any host access (no attribute access, no imports, no calls but a fixed list
//! of pure built-ins).
//!
//! # The subset
//!
//! | form | example | meaning |
//! |---|---|---|
//! | table lookup | `cpu_util.$index`, `T[x]` | value of table `T` at the current index / at key `x` (missing key: the target is skipped for that index) |
//! | `get` scalar | `sys_uptime` | the value a `get` table fetched |
//! | literals | `1`, `2.5`, `'ctrl'`, `None`, `True`, `[...]`, `(...)` | as in Python; adjacent strings concatenate |
//! | arithmetic | `+ - * / // % **`, unary `-`/`+` | Python 3 semantics: `/` is true division, `//` and `%` floor; `str * int` repeats (bounded) |
//! | comparison | `== != < <= > >=`, `in`, `not in`, chained | numbers compare across int/float; `x in T` tests a table's keys, `s in t` substrings |
//! | logic | `and`, `or`, `not`, `a if c else b` | short-circuit, Python truthiness |
//! | comprehension | `[x for x in T.values() if c]`, `[(x,y) for (x,y) in T.items() if c1 if c2]` | one `for`, any number of `if`s |
//! | table views | `T.values()`, `T.keys()`, `T.items()`, `T.get(k[, d])` | |
//! | built-ins | `len int long float str round abs min max sum bool` | `round(x, n)` rounds ties to even (Python 3) |
//! | transform | `lambda x: round((x * 1.8) + 32, 2) if x != 0 else 0.0` | only as a target's whole `transform`; its body sees only `x` |
//!
//! Values walked from a device are strings (decimal for numbers), as the original's SNMP
//! layer returned them; `static` values keep their JSON type. Integers are 128-bit:
//! results beyond that are an evaluation error (Python's are unbounded).
//!
//! Names are resolved at compile time: every identifier must be a table of the
//! document's `oids`, a comprehension variable or the lambda's parameter, so a typo is a
//! configuration error when the document is loaded, not a silently missing metric.

mod eval;
mod lexer;
mod parser;
mod value;

pub use eval::{binary, Env, EvalContext};
pub use parser::{compile, compile_lambda, BinOp, Builtin, CmpOp, Expr, Lambda, Names, NoNames};
pub use value::{float_repr, round_float, EvalError, Num, Table, Value};

/// An expression this language does not accept, with the byte offset where it went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at offset {offset})")]
pub struct CompileError {
    pub offset: usize,
    pub message: String,
}

impl CompileError {
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> CompileError {
        CompileError {
            offset,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
