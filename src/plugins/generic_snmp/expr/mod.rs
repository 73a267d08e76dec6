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
//! | dicts | `{}`, `{k: v, ...}`, `{k: v for (k, v) in T.items() if c}` | keys are strings (integers are written in decimal) |
//! | table/dict views | `T.values()`, `T.keys()`, `T.items()`, `T.get(k[, d])`, `for k in T` (keys) | |
//! | subscripts, slices | `xs[0]`, `xs[-1]`, `xs[2:6]`, `s[:3]` | no step |
//! | string methods | `s.split([sep])`, `s.replace(a, b)`, `s.startswith(p)`, `s.endswith(p)`, `s.strip([chars])`, `sep.join(xs)`, `s.lower()`, `s.upper()` | |
//! | built-ins | `len int long float str round abs min max sum bool sorted list any all zip` | `round(x, n)` rounds ties to even (Python 3) |
//! | vendor built-ins | `match(pattern, s)` (`re.match`), `merge(d1, d2)`, `ip_from_octets(s)`, `ipv6_from_index(s)`, `config(section, key[, default])`, `meta(key[, default])` | `config`/`meta` exist only while a vendor definition runs |
//! | transform | `lambda x: round((x * 1.8) + 32, 2) if x != 0 else 0.0` | only as a target's whole `transform`; its body sees only `x` |
//!
//! The forms the conformance documents use are: `T.$index`, integer and string literals,
//! `'data' if 'Routing Engine' in T.$index else 'ctrl'`, `float(T.$index) / 100.0 *
//! T.$index`, `int(T.$index) * T.$index`, the `len([...])` counting comprehensions over
//! `T.values()` and `T.items()` with `==`, `in`, `not in` and `U[x] == $index`, and the
//! three Celsius/scale transforms. The rest exists for vendor definitions
//! (`resources/vendors/`), which build static tables with the same language.
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
pub use parser::{
    compile, compile_lambda, BinOp, Builtin, CmpOp, Expr, Lambda, Names, NoNames, MAX_DEPTH,
};
pub use value::{float_repr, parse_py_int, round_float, EvalError, Num, Table, Value};

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
