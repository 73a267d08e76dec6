//! Evaluates a compiled expression against the tables of one poll.

use std::collections::BTreeMap;

use super::parser::{BinOp, Builtin, CmpOp, Expr, Lambda, Method, Target};
use super::value::{float_repr, round_float, EvalError, Num, Value};

/// One table of a poll: index (or static key) -> value.
pub type Table = BTreeMap<String, Value>;

/// Longest string or list a `*` may build: repetition is legal Python, but a document
/// must not be able to make the poller allocate gigabytes.
const MAX_REPEAT_LEN: usize = 1 << 20;

/// What an expression can see: the tables and `get` scalars by slot, and the index.
pub struct Env<'a> {
    pub tables: &'a [Table],
    pub scalars: &'a [Value],
    pub index: Option<&'a str>,
}

impl Env<'_> {
    pub fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        self.eval_in(e, &mut Vec::new())
    }

    /// Applies a transform to a value (the lambda's parameter is local slot 0).
    pub fn apply(&self, f: &Lambda, x: Value) -> Result<Value, EvalError> {
        self.eval_in(&f.body, &mut vec![x])
    }

    fn table(&self, t: usize) -> Result<&Table, EvalError> {
        self.tables
            .get(t)
            .ok_or_else(|| EvalError::Name(format!("table #{t}")))
    }

    fn truthy(&self, v: &Value) -> bool {
        v.truthy(|t| self.tables.get(t).map(|x| x.len()).unwrap_or(0))
    }

    fn eval_in(&self, e: &Expr, locals: &mut Vec<Value>) -> Result<Value, EvalError> {
        match e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Index => self
                .index
                .map(|i| Value::Str(i.to_string()))
                .ok_or_else(|| EvalError::Name("`$index` outside an indexed target".into())),
            Expr::Name(n) => Err(EvalError::Name(format!("name '{n}' is not defined"))),
            Expr::Table(t) => {
                self.table(*t)?;
                Ok(Value::Table(*t))
            }
            Expr::Scalar(s) => self
                .scalars
                .get(*s)
                .cloned()
                .ok_or_else(|| EvalError::Name(format!("scalar #{s}"))),
            Expr::Local(slot) => locals
                .get(*slot)
                .cloned()
                .ok_or_else(|| EvalError::Name(format!("local #{slot}"))),
            Expr::Subscript(target, key) => {
                let target = self.eval_in(target, locals)?;
                let key = self.eval_in(key, locals)?;
                self.subscript(&target, &key)
            }
            Expr::Method(target, method, args) => {
                let target = self.eval_in(target, locals)?;
                let Value::Table(t) = target else {
                    return Err(EvalError::Type(format!(
                        "'{}' object has no such method",
                        target.type_name()
                    )));
                };
                let table = self.table(t)?;
                Ok(match method {
                    Method::Values => Value::List(table.values().cloned().collect()),
                    Method::Keys => {
                        Value::List(table.keys().map(|k| Value::Str(k.clone())).collect())
                    }
                    Method::Items => Value::List(
                        table
                            .iter()
                            .map(|(k, v)| Value::Tuple(vec![Value::Str(k.clone()), v.clone()]))
                            .collect(),
                    ),
                    Method::Get => {
                        let key = match args.first() {
                            Some(a) => self.eval_in(a, locals)?,
                            None => return Err(EvalError::Type("get() needs a key".into())),
                        };
                        let found = match &key {
                            Value::Str(k) => table.get(k).cloned(),
                            _ => None,
                        };
                        match (found, args.get(1)) {
                            (Some(v), _) => v,
                            (None, Some(d)) => self.eval_in(d, locals)?,
                            (None, None) => Value::None,
                        }
                    }
                })
            }
            Expr::Call(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval_in(a, locals)?);
                }
                self.call(*f, vals)
            }
            Expr::Neg(a) => match self.eval_in(a, locals)?.as_number() {
                Some(Num::Int(i)) => i
                    .checked_neg()
                    .map(Value::Int)
                    .ok_or_else(|| EvalError::Overflow("integer negation".into())),
                Some(Num::Float(f)) => Ok(Value::Float(-f)),
                None => Err(EvalError::Type("bad operand type for unary -".into())),
            },
            Expr::Pos(a) => match self.eval_in(a, locals)?.as_number() {
                Some(Num::Int(i)) => Ok(Value::Int(i)),
                Some(Num::Float(f)) => Ok(Value::Float(f)),
                None => Err(EvalError::Type("bad operand type for unary +".into())),
            },
            Expr::Not(a) => {
                let v = self.eval_in(a, locals)?;
                Ok(Value::Bool(!self.truthy(&v)))
            }
            Expr::Binary(op, a, b) => {
                let a = self.eval_in(a, locals)?;
                let b = self.eval_in(b, locals)?;
                binary(*op, &a, &b)
            }
            Expr::Compare(first, rest) => {
                let mut left = self.eval_in(first, locals)?;
                for (op, right) in rest {
                    let right = self.eval_in(right, locals)?;
                    if !self.compare(*op, &left, &right)? {
                        return Ok(Value::Bool(false));
                    }
                    left = right;
                }
                Ok(Value::Bool(true))
            }
            Expr::And(a, b) => {
                let a = self.eval_in(a, locals)?;
                if self.truthy(&a) {
                    self.eval_in(b, locals)
                } else {
                    Ok(a)
                }
            }
            Expr::Or(a, b) => {
                let a = self.eval_in(a, locals)?;
                if self.truthy(&a) {
                    Ok(a)
                } else {
                    self.eval_in(b, locals)
                }
            }
            Expr::IfElse { cond, then, other } => {
                let c = self.eval_in(cond, locals)?;
                if self.truthy(&c) {
                    self.eval_in(then, locals)
                } else {
                    self.eval_in(other, locals)
                }
            }
            Expr::List(items) => Ok(Value::List(self.eval_all(items, locals)?)),
            Expr::Tuple(items) => Ok(Value::Tuple(self.eval_all(items, locals)?)),
            Expr::Comp {
                elt,
                target,
                iter,
                conds,
            } => {
                let items = self.iterate(self.eval_in(iter, locals)?)?;
                let depth = match target {
                    Target::One(_, slot) => *slot,
                    Target::Many(names) => names.first().map(|(_, s)| *s).unwrap_or(locals.len()),
                };
                let mut out = Vec::new();
                for item in items {
                    locals.truncate(depth);
                    match target {
                        Target::One(..) => locals.push(item),
                        Target::Many(names) => {
                            let parts = match item {
                                Value::Tuple(p) | Value::List(p) => p,
                                Value::Str(s) => {
                                    s.chars().map(|c| Value::Str(c.to_string())).collect()
                                }
                                other => {
                                    return Err(EvalError::Type(format!(
                                        "cannot unpack non-iterable {} object",
                                        other.type_name()
                                    )))
                                }
                            };
                            if parts.len() != names.len() {
                                return Err(EvalError::Value(format!(
                                    "expected {} values to unpack, got {}",
                                    names.len(),
                                    parts.len()
                                )));
                            }
                            locals.extend(parts);
                        }
                    }
                    let mut keep = true;
                    for c in conds {
                        let v = self.eval_in(c, locals)?;
                        if !self.truthy(&v) {
                            keep = false;
                            break;
                        }
                    }
                    if keep {
                        out.push(self.eval_in(elt, locals)?);
                    }
                }
                locals.truncate(depth);
                Ok(Value::List(out))
            }
        }
    }

    fn eval_all(&self, items: &[Expr], locals: &mut Vec<Value>) -> Result<Vec<Value>, EvalError> {
        items.iter().map(|i| self.eval_in(i, locals)).collect()
    }

    /// What `for x in v` walks: list items, a table's keys, a string's characters.
    fn iterate(&self, v: Value) -> Result<Vec<Value>, EvalError> {
        match v {
            Value::List(items) | Value::Tuple(items) => Ok(items),
            Value::Table(t) => Ok(self
                .table(t)?
                .keys()
                .map(|k| Value::Str(k.clone()))
                .collect()),
            Value::Str(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
            other => Err(EvalError::Type(format!(
                "'{}' object is not iterable",
                other.type_name()
            ))),
        }
    }

    fn subscript(&self, target: &Value, key: &Value) -> Result<Value, EvalError> {
        match target {
            Value::Table(t) => {
                let table = self.table(*t)?;
                match key {
                    Value::Str(k) => table
                        .get(k)
                        .cloned()
                        .ok_or_else(|| EvalError::Key(format!("'{k}'"))),
                    other => Err(EvalError::Key(other.to_string())),
                }
            }
            Value::List(items) | Value::Tuple(items) => {
                let Some(Num::Int(i)) = key.as_number() else {
                    return Err(EvalError::Type("indices must be integers".into()));
                };
                let len = items.len() as i128;
                let at = if i < 0 { i + len } else { i };
                if at < 0 || at >= len {
                    return Err(EvalError::Key("index out of range".into()));
                }
                Ok(items[at as usize].clone())
            }
            Value::Str(s) => {
                let Some(Num::Int(i)) = key.as_number() else {
                    return Err(EvalError::Type("string indices must be integers".into()));
                };
                let chars: Vec<char> = s.chars().collect();
                let len = chars.len() as i128;
                let at = if i < 0 { i + len } else { i };
                if at < 0 || at >= len {
                    return Err(EvalError::Key("string index out of range".into()));
                }
                Ok(Value::Str(chars[at as usize].to_string()))
            }
            other => Err(EvalError::Type(format!(
                "'{}' object is not subscriptable",
                other.type_name()
            ))),
        }
    }

    fn compare(&self, op: CmpOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
        use std::cmp::Ordering::*;
        Ok(match op {
            CmpOp::Eq => a.py_eq(b),
            CmpOp::Ne => !a.py_eq(b),
            CmpOp::Lt => a.py_cmp(b)? == Less,
            CmpOp::Le => a.py_cmp(b)? != Greater,
            CmpOp::Gt => a.py_cmp(b)? == Greater,
            CmpOp::Ge => a.py_cmp(b)? != Less,
            CmpOp::In => self.contains(b, a)?,
            CmpOp::NotIn => !self.contains(b, a)?,
        })
    }

    fn contains(&self, container: &Value, item: &Value) -> Result<bool, EvalError> {
        match container {
            Value::Str(s) => match item {
                Value::Str(needle) => Ok(s.contains(needle.as_str())),
                other => Err(EvalError::Type(format!(
                    "'in <string>' requires string as left operand, not {}",
                    other.type_name()
                ))),
            },
            Value::List(items) | Value::Tuple(items) => Ok(items.iter().any(|x| x.py_eq(item))),
            Value::Table(t) => Ok(match item {
                Value::Str(k) => self.table(*t)?.contains_key(k),
                _ => false,
            }),
            other => Err(EvalError::Type(format!(
                "argument of type '{}' is not iterable",
                other.type_name()
            ))),
        }
    }

    fn call(&self, f: Builtin, mut args: Vec<Value>) -> Result<Value, EvalError> {
        let first = args.first().cloned().unwrap_or(Value::None);
        match f {
            Builtin::Len => match &first {
                Value::Str(s) => Ok(Value::Int(s.chars().count() as i128)),
                Value::List(v) | Value::Tuple(v) => Ok(Value::Int(v.len() as i128)),
                Value::Table(t) => Ok(Value::Int(self.table(*t)?.len() as i128)),
                other => Err(EvalError::Type(format!(
                    "object of type '{}' has no len()",
                    other.type_name()
                ))),
            },
            Builtin::Int => first.to_int(),
            Builtin::Float => first.to_float(),
            Builtin::Str => first.to_str().map(Value::Str),
            Builtin::Bool => Ok(Value::Bool(self.truthy(&first))),
            Builtin::Abs => match first.as_number() {
                Some(Num::Int(i)) => i
                    .checked_abs()
                    .map(Value::Int)
                    .ok_or_else(|| EvalError::Overflow("abs".into())),
                Some(Num::Float(x)) => Ok(Value::Float(x.abs())),
                None => Err(EvalError::Type("bad operand type for abs()".into())),
            },
            Builtin::Round => {
                let nd = match args.get(1) {
                    None | Some(Value::None) => None,
                    Some(v) => match v.as_number() {
                        Some(Num::Int(n)) => Some(n.clamp(-400, 400) as i64),
                        _ => return Err(EvalError::Type("ndigits must be an integer".into())),
                    },
                };
                match (first.as_number(), nd) {
                    (Some(Num::Int(i)), None) => Ok(Value::Int(i)),
                    (Some(Num::Int(i)), Some(n)) if n >= 0 => Ok(Value::Int(i)),
                    (Some(Num::Int(i)), Some(n)) => {
                        Ok(Value::Int(round_float(i as f64, n) as i128))
                    }
                    (Some(Num::Float(x)), None) => {
                        if !x.is_finite() {
                            return Err(EvalError::Overflow(format!(
                                "cannot convert float {} to integer",
                                float_repr(x)
                            )));
                        }
                        Ok(Value::Int(round_float(x, 0) as i128))
                    }
                    (Some(Num::Float(x)), Some(n)) => Ok(Value::Float(round_float(x, n))),
                    (None, _) => Err(EvalError::Type(format!(
                        "type {} doesn't define __round__",
                        first.type_name()
                    ))),
                }
            }
            Builtin::Min | Builtin::Max => {
                let items = if args.len() == 1 {
                    self.iterate(args.remove(0))?
                } else {
                    args
                };
                let mut best: Option<Value> = None;
                for item in items {
                    best = Some(match best {
                        None => item,
                        Some(b) => {
                            let ord = item.py_cmp(&b)?;
                            let better = match f {
                                Builtin::Min => ord == std::cmp::Ordering::Less,
                                _ => ord == std::cmp::Ordering::Greater,
                            };
                            if better {
                                item
                            } else {
                                b
                            }
                        }
                    });
                }
                best.ok_or_else(|| EvalError::Value("min()/max() arg is an empty sequence".into()))
            }
            Builtin::Sum => {
                let mut acc = Value::Int(0);
                for item in self.iterate(first)? {
                    acc = binary(BinOp::Add, &acc, &item)?;
                    if matches!(acc, Value::Str(_) | Value::List(_) | Value::Tuple(_)) {
                        return Err(EvalError::Type("sum() can only add numbers".into()));
                    }
                }
                Ok(acc)
            }
        }
    }
}

/// Python arithmetic on two values.
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    if let (Some(x), Some(y)) = (a.as_number(), b.as_number()) {
        return numeric(op, x, y);
    }
    match (op, a, b) {
        (BinOp::Add, Value::Str(x), Value::Str(y)) => Ok(Value::Str(format!("{x}{y}"))),
        (BinOp::Add, Value::List(x), Value::List(y)) => {
            Ok(Value::List(x.iter().chain(y).cloned().collect()))
        }
        (BinOp::Add, Value::Tuple(x), Value::Tuple(y)) => {
            Ok(Value::Tuple(x.iter().chain(y).cloned().collect()))
        }
        (BinOp::Mul, Value::Str(s), n) | (BinOp::Mul, n, Value::Str(s))
            if matches!(n, Value::Int(_) | Value::Bool(_)) =>
        {
            let times = repeat_count(n, s.len())?;
            Ok(Value::Str(s.repeat(times)))
        }
        (BinOp::Mul, Value::List(v), n) | (BinOp::Mul, n, Value::List(v))
            if matches!(n, Value::Int(_) | Value::Bool(_)) =>
        {
            let times = repeat_count(n, v.len())?;
            Ok(Value::List(
                std::iter::repeat_n(v.iter().cloned(), times)
                    .flatten()
                    .collect(),
            ))
        }
        _ => Err(EvalError::Type(format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op_symbol(op),
            a.type_name(),
            b.type_name()
        ))),
    }
}

fn repeat_count(n: &Value, unit: usize) -> Result<usize, EvalError> {
    let times = match n.as_number() {
        Some(Num::Int(i)) => i.max(0),
        _ => 0,
    };
    let total = (unit as i128).saturating_mul(times);
    if total > MAX_REPEAT_LEN as i128 {
        return Err(EvalError::Overflow(format!(
            "repetition would build {total} items (limit {MAX_REPEAT_LEN})"
        )));
    }
    Ok(times as usize)
}

fn op_symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::FloorDiv => "//",
        BinOp::Mod => "%",
        BinOp::Pow => "**",
    }
}

fn overflow(op: BinOp) -> EvalError {
    EvalError::Overflow(format!(
        "integer result of `{}` out of range",
        op_symbol(op)
    ))
}

fn numeric(op: BinOp, a: Num, b: Num) -> Result<Value, EvalError> {
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        return match op {
            BinOp::Add => x.checked_add(y).map(Value::Int).ok_or(overflow(op)),
            BinOp::Sub => x.checked_sub(y).map(Value::Int).ok_or(overflow(op)),
            BinOp::Mul => x.checked_mul(y).map(Value::Int).ok_or(overflow(op)),
            // True division, as in Python 3.
            BinOp::Div => {
                if y == 0 {
                    Err(EvalError::ZeroDivision)
                } else {
                    Ok(Value::Float(x as f64 / y as f64))
                }
            }
            BinOp::FloorDiv | BinOp::Mod => {
                if y == 0 {
                    return Err(EvalError::ZeroDivision);
                }
                let q = x.checked_div(y).ok_or(overflow(op))?;
                let r = x.checked_rem(y).ok_or(overflow(op))?;
                // Python floors toward negative infinity; the remainder takes the divisor's sign.
                let (q, r) = if r != 0 && ((r < 0) != (y < 0)) {
                    (q - 1, r + y)
                } else {
                    (q, r)
                };
                Ok(Value::Int(if op == BinOp::FloorDiv { q } else { r }))
            }
            BinOp::Pow => {
                if y < 0 {
                    Ok(Value::Float((x as f64).powf(y as f64)))
                } else {
                    let e = u32::try_from(y).map_err(|_| overflow(op))?;
                    x.checked_pow(e).map(Value::Int).ok_or(overflow(op))
                }
            }
        };
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    match op {
        BinOp::Add => Ok(Value::Float(x + y)),
        BinOp::Sub => Ok(Value::Float(x - y)),
        BinOp::Mul => Ok(Value::Float(x * y)),
        BinOp::Div => {
            if y == 0.0 {
                Err(EvalError::ZeroDivision)
            } else {
                Ok(Value::Float(x / y))
            }
        }
        BinOp::FloorDiv => {
            if y == 0.0 {
                Err(EvalError::ZeroDivision)
            } else {
                Ok(Value::Float((x / y).floor()))
            }
        }
        BinOp::Mod => {
            if y == 0.0 {
                Err(EvalError::ZeroDivision)
            } else {
                let r = x % y;
                Ok(Value::Float(if r != 0.0 && (r < 0.0) != (y < 0.0) {
                    r + y
                } else {
                    r
                }))
            }
        }
        BinOp::Pow => Ok(Value::Float(x.powf(y))),
    }
}
