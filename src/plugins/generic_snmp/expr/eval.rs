//! Evaluates a compiled expression against the tables of one poll.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::parser::{BinOp, Builtin, CmpOp, Expr, Lambda, Method, Target};
use super::value::{float_repr, round_float, EvalError, Num, Table, Value};

/// What `config()` and `meta()` read: the running plugin's file and the resource's
/// metadata. Only enrichment-time vendor definitions have one.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    pub metadata: crate::model::Metadata,
}

/// Largest value (by [`weight`]) one `*`, `.replace()` or `.join()` may build: repetition
/// is legal Python, but a document must not be able to make the poller allocate gigabytes.
const MAX_REPEAT_LEN: usize = 1 << 20;

/// What one evaluation may build and copy in all, by [`weight`]: a comprehension that
/// builds a big value for each of many items is as costly as one big value, and a poller
/// thread must not be held for minutes (nor its memory grow) by one expression. The
/// documents and vendor definitions we know spend well under 1% of it.
const MAX_WORK: usize = 1 << 24;

/// What building or copying a value costs: a unit, and a unit per byte of a string or per
/// item of a list or tuple (a dict is shared, not copied).
fn weight(v: &Value) -> usize {
    match v {
        Value::Str(s) => 1 + s.len(),
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .fold(1, |sum, item| sum.saturating_add(weight(item))),
        _ => 1,
    }
}

/// What reading a value through costs: its weight, or a table's or dict's length.
fn size(env: &Env<'_>, v: &Value) -> usize {
    match v {
        Value::Table(_) | Value::Dict(_) => 1 + env.as_table(v).map_or(0, |t| t.len()),
        other => weight(other),
    }
}

/// Comprehension and lambda variables by slot, and the work done so far.
#[derive(Default)]
struct Locals {
    slots: Vec<Value>,
    work: usize,
}

impl Locals {
    /// Counts `units` of work, failing past [`MAX_WORK`].
    fn charge(&mut self, units: usize) -> Result<(), EvalError> {
        self.work = self.work.saturating_add(units);
        if self.work > MAX_WORK {
            return Err(EvalError::Overflow(format!(
                "the expression builds or copies more than {MAX_WORK} items and bytes"
            )));
        }
        Ok(())
    }
}

impl std::ops::Deref for Locals {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.slots
    }
}

impl std::ops::DerefMut for Locals {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.slots
    }
}

/// What a comprehension does with each kept item.
type ItemBody<'b, 'a> = dyn FnMut(&Env<'a>, &mut Locals) -> Result<(), EvalError> + 'b;

/// What an expression can see: the tables and `get` scalars by slot, and the index.
pub struct Env<'a> {
    pub tables: &'a [Table],
    pub scalars: &'a [Value],
    pub index: Option<&'a str>,
    pub context: Option<&'a EvalContext>,
}

impl<'a> Env<'a> {
    pub fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        self.eval_in(e, &mut Locals::default())
    }

    /// The value `e` names in place, when `e` is a table's row at `$index`
    /// (`ifInOctets.$index`, most metrics of a document): the same value or `KeyError`
    /// [`Env::eval`] gives, without copying it. None for any other expression. (The
    /// work bound cannot be reached by one row: an SNMP value is far below [`MAX_WORK`].)
    pub fn row_at_index(&self, e: &Expr) -> Option<Result<&Value, EvalError>> {
        let Expr::Subscript(target, key) = e else {
            return None;
        };
        let (Expr::Table(t), Expr::Index) = (&**target, &**key) else {
            return None;
        };
        let (table, index) = (self.tables.get(*t)?, self.index?);
        Some(
            table
                .get(index)
                .ok_or_else(|| EvalError::Key(format!("'{index}'"))),
        )
    }

    /// Applies a transform to a value (the lambda's parameter is local slot 0).
    pub fn apply(&self, f: &Lambda, x: Value) -> Result<Value, EvalError> {
        let mut locals = Locals {
            slots: vec![x],
            work: 0,
        };
        self.eval_in(&f.body, &mut locals)
    }

    fn table(&self, t: usize) -> Result<&Table, EvalError> {
        self.tables
            .get(t)
            .ok_or_else(|| EvalError::Name(format!("table #{t}")))
    }

    /// The entries of a table or dict value.
    fn as_table<'v>(&'v self, v: &'v Value) -> Option<&'v Table> {
        match v {
            Value::Table(t) => self.tables.get(*t),
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    fn truthy(&self, v: &Value) -> bool {
        v.truthy(|t| self.tables.get(t).map(|x| x.len()).unwrap_or(0))
    }

    /// Evaluates `e`, counting what its value cost to build or copy (see [`MAX_WORK`]).
    fn eval_in(&self, e: &Expr, locals: &mut Locals) -> Result<Value, EvalError> {
        let v = self.eval_node(e, locals)?;
        locals.charge(weight(&v))?;
        Ok(v)
    }

    fn eval_node(&self, e: &Expr, locals: &mut Locals) -> Result<Value, EvalError> {
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
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval_in(a, locals)?);
                }
                self.method(&target, *method, vals)
            }
            Expr::Slice(target, lo, hi) => {
                let target = self.eval_in(target, locals)?;
                let bound = |b: &Option<Box<Expr>>,
                             locals: &mut Locals|
                 -> Result<Option<i128>, EvalError> {
                    match b {
                        None => Ok(None),
                        Some(e) => match self.eval_in(e, locals)?.as_number() {
                            Some(Num::Int(i)) => Ok(Some(i)),
                            _ => Err(EvalError::Type("slice indices must be integers".into())),
                        },
                    }
                };
                let (lo, hi) = (bound(lo, locals)?, bound(hi, locals)?);
                let range = |len: usize| {
                    let len = len as i128;
                    let clamp = |i: i128| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
                    let a = lo.map(clamp).unwrap_or(0);
                    let b = hi.map(clamp).unwrap_or(len as usize);
                    (a, b.max(a))
                };
                match target {
                    Value::List(v) => {
                        let (a, b) = range(v.len());
                        Ok(Value::List(v[a..b].to_vec()))
                    }
                    Value::Tuple(v) => {
                        let (a, b) = range(v.len());
                        Ok(Value::Tuple(v[a..b].to_vec()))
                    }
                    Value::Str(s) => {
                        let chars: Vec<char> = s.chars().collect();
                        let (a, b) = range(chars.len());
                        Ok(Value::Str(chars[a..b].iter().collect()))
                    }
                    other => Err(EvalError::Type(format!(
                        "'{}' object is not sliceable",
                        other.type_name()
                    ))),
                }
            }
            Expr::Call(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval_in(a, locals)?);
                }
                // Most built-ins read their arguments through (a table's keys, both
                // dicts of a merge), whatever they return; `len` and `bool` of a table
                // do not.
                if !matches!(f, Builtin::Len | Builtin::Bool) {
                    locals.charge(vals.iter().map(|v| size(self, v)).sum())?;
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
            Expr::Dict(items) => {
                let mut out = Table::new();
                for (k, v) in items {
                    let k = dict_key(self.eval_in(k, locals)?)?;
                    out.insert(k, self.eval_in(v, locals)?);
                }
                Ok(Value::Dict(Arc::new(out)))
            }
            Expr::DictComp {
                key,
                value,
                target,
                iter,
                conds,
            } => {
                let mut out = Table::new();
                self.for_each(target, iter, conds, locals, &mut |env, locals| {
                    let k = dict_key(env.eval_in(key, locals)?)?;
                    let v = env.eval_in(value, locals)?;
                    out.insert(k, v);
                    Ok(())
                })?;
                Ok(Value::Dict(Arc::new(out)))
            }
            Expr::Comp {
                elt,
                target,
                iter,
                conds,
            } => {
                let mut out = Vec::new();
                self.for_each(target, iter, conds, locals, &mut |env, locals| {
                    out.push(env.eval_in(elt, locals)?);
                    Ok(())
                })?;
                Ok(Value::List(out))
            }
        }
    }

    /// A comprehension's loop: evaluates the iterable `iter` (its items count against the
    /// evaluation budget), binds the target to each item, keeps the items whose
    /// conditions hold, and runs `body` for them.
    fn for_each(
        &self,
        target: &Target,
        iter: &Expr,
        conds: &[Expr],
        locals: &mut Locals,
        body: &mut ItemBody<'_, 'a>,
    ) -> Result<(), EvalError> {
        let items = self.iterate(self.eval_in(iter, locals)?)?;
        locals.charge(items.len())?;
        let depth = match target {
            Target::One(_, slot) => *slot,
            Target::Many(names) => names.first().map(|(_, s)| *s).unwrap_or(locals.len()),
        };
        for item in items {
            locals.truncate(depth);
            match target {
                Target::One(..) => locals.push(item),
                Target::Many(names) => {
                    let parts = match item {
                        Value::Tuple(p) | Value::List(p) => p,
                        Value::Str(s) => s.chars().map(|c| Value::Str(c.to_string())).collect(),
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
                body(self, locals)?;
            }
        }
        locals.truncate(depth);
        Ok(())
    }

    fn eval_all(&self, items: &[Expr], locals: &mut Locals) -> Result<Vec<Value>, EvalError> {
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
            Value::Dict(d) => Ok(d.keys().map(|k| Value::Str(k.clone())).collect()),
            Value::Str(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
            other => Err(EvalError::Type(format!(
                "'{}' object is not iterable",
                other.type_name()
            ))),
        }
    }

    fn method(&self, target: &Value, method: Method, args: Vec<Value>) -> Result<Value, EvalError> {
        let arg_str = |i: usize| -> Result<&str, EvalError> {
            match args.get(i) {
                Some(Value::Str(s)) => Ok(s.as_str()),
                Some(other) => Err(EvalError::Type(format!(
                    "expected a string argument, got {}",
                    other.type_name()
                ))),
                None => Err(EvalError::Type("missing argument".into())),
            }
        };
        if let Some(table) = self.as_table(target) {
            return match method {
                Method::Values => Ok(Value::List(table.values().cloned().collect())),
                Method::Keys => Ok(Value::List(
                    table.keys().map(|k| Value::Str(k.clone())).collect(),
                )),
                Method::Items => Ok(Value::List(
                    table
                        .iter()
                        .map(|(k, v)| Value::Tuple(vec![Value::Str(k.clone()), v.clone()]))
                        .collect(),
                )),
                Method::Get => {
                    let found = match args.first() {
                        Some(Value::Str(k)) => table.get(k).cloned(),
                        _ => None,
                    };
                    Ok(found.unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::None)))
                }
                _ => Err(EvalError::Type(format!(
                    "'dict' object has no method {method:?}"
                ))),
            };
        }
        let Value::Str(s) = target else {
            return Err(EvalError::Type(format!(
                "'{}' object has no method {method:?}",
                target.type_name()
            )));
        };
        match method {
            Method::Split => {
                let parts: Vec<Value> = match args.first() {
                    None | Some(Value::None) => s
                        .split_whitespace()
                        .map(|p| Value::Str(p.to_string()))
                        .collect(),
                    Some(_) => {
                        let sep = arg_str(0)?;
                        if sep.is_empty() {
                            return Err(EvalError::Value("empty separator".into()));
                        }
                        s.split(sep).map(|p| Value::Str(p.to_string())).collect()
                    }
                };
                Ok(Value::List(parts))
            }
            Method::Replace => {
                let (from, to) = (arg_str(0)?, arg_str(1)?);
                let hits = if from.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(from).count()
                };
                built_size(s.len().saturating_add(hits.saturating_mul(to.len())))?;
                Ok(Value::Str(s.replace(from, to)))
            }
            Method::StartsWith => Ok(Value::Bool(s.starts_with(arg_str(0)?))),
            Method::EndsWith => Ok(Value::Bool(s.ends_with(arg_str(0)?))),
            Method::Strip => Ok(Value::Str(match args.first() {
                None | Some(Value::None) => s.trim().to_string(),
                Some(_) => {
                    let chars: Vec<char> = arg_str(0)?.chars().collect();
                    s.trim_matches(|c| chars.contains(&c)).to_string()
                }
            })),
            Method::Lower => Ok(Value::Str(s.to_lowercase())),
            Method::Upper => Ok(Value::Str(s.to_uppercase())),
            Method::Join => {
                let items = self.iterate(args.into_iter().next().unwrap_or(Value::None))?;
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Str(p) => parts.push(p),
                        other => {
                            return Err(EvalError::Type(format!(
                                "join() expects strings, got {}",
                                other.type_name()
                            )))
                        }
                    }
                }
                let len = parts.iter().map(String::len).sum::<usize>();
                built_size(len.saturating_add(parts.len().saturating_mul(s.len())))?;
                Ok(Value::Str(parts.join(s)))
            }
            _ => Err(EvalError::Type(format!(
                "'str' object has no method {method:?}"
            ))),
        }
    }

    fn subscript(&self, target: &Value, key: &Value) -> Result<Value, EvalError> {
        match target {
            Value::Table(_) | Value::Dict(_) => {
                let table = self
                    .as_table(target)
                    .ok_or_else(|| EvalError::Name("table".into()))?;
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
            Value::Table(_) | Value::Dict(_) => Ok(match (item, self.as_table(container)) {
                (Value::Str(k), Some(t)) => t.contains_key(k),
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
                Value::Table(_) | Value::Dict(_) => Ok(Value::Int(
                    self.as_table(&first).map(|t| t.len()).unwrap_or(0) as i128,
                )),
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
            Builtin::Match => {
                let (Some(Value::Str(pattern)), Some(Value::Str(text))) =
                    (args.first(), args.get(1))
                else {
                    return Err(EvalError::Type(
                        "match() needs a pattern and a string".into(),
                    ));
                };
                Ok(Value::Bool(regex_match(pattern, text)?))
            }
            Builtin::Sorted => {
                let mut items = self.iterate(first)?;
                let mut failed = None;
                items.sort_by(|a, b| {
                    a.py_cmp(b).unwrap_or_else(|e| {
                        failed = Some(e);
                        std::cmp::Ordering::Equal
                    })
                });
                match failed {
                    Some(e) => Err(e),
                    None => Ok(Value::List(items)),
                }
            }
            Builtin::List => Ok(Value::List(self.iterate(first)?)),
            Builtin::Zip => {
                let columns = args
                    .into_iter()
                    .map(|a| self.iterate(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let len = columns.iter().map(Vec::len).min().unwrap_or(0);
                let mut columns: Vec<std::vec::IntoIter<Value>> =
                    columns.into_iter().map(Vec::into_iter).collect();
                Ok(Value::List(
                    (0..len)
                        .map(|_| {
                            Value::Tuple(columns.iter_mut().filter_map(Iterator::next).collect())
                        })
                        .collect(),
                ))
            }
            Builtin::Any => Ok(Value::Bool(
                self.iterate(first)?.iter().any(|v| self.truthy(v)),
            )),
            Builtin::All => Ok(Value::Bool(
                self.iterate(first)?.iter().all(|v| self.truthy(v)),
            )),
            Builtin::Config => {
                let ctx = self.context.ok_or_else(|| {
                    EvalError::Name("config() is only available to vendor definitions".into())
                })?;
                let (Some(Value::Str(section)), Some(Value::Str(key))) =
                    (args.first(), args.get(1))
                else {
                    return Err(EvalError::Type("config() needs a section and a key".into()));
                };
                match ctx.config.get(section).and_then(|s| s.get(key)) {
                    Some(v) => Ok(Value::Str(v.clone())),
                    None => args
                        .get(2)
                        .cloned()
                        .ok_or_else(|| EvalError::Key(format!("[{section}] {key}"))),
                }
            }
            Builtin::Meta => {
                let ctx = self.context.ok_or_else(|| {
                    EvalError::Name("meta() is only available to vendor definitions".into())
                })?;
                let Value::Str(key) = &first else {
                    return Err(EvalError::Type("meta() needs a key".into()));
                };
                match ctx.metadata.get(key) {
                    Some(v) => Ok(Value::Str(v.clone())),
                    None => args
                        .get(1)
                        .cloned()
                        .ok_or_else(|| EvalError::Key(format!("resource_metadata.{key}"))),
                }
            }
            Builtin::Merge => {
                let (Some(a), Some(b)) = (
                    args.first().and_then(|a| self.as_table(a)),
                    args.get(1).and_then(|b| self.as_table(b)),
                ) else {
                    return Err(EvalError::Type("merge() needs two dicts".into()));
                };
                let mut out = a.clone();
                out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
                Ok(Value::Dict(Arc::new(out)))
            }
            Builtin::IpFromOctets => {
                let Value::Str(s) = &first else {
                    return Err(EvalError::Type(
                        "ip_from_octets() needs an octet string".into(),
                    ));
                };
                let bytes: Vec<u8> = s
                    .chars()
                    .map(|c| {
                        u8::try_from(u32::from(c))
                            .map_err(|_| EvalError::Value("not an octet string".into()))
                    })
                    .collect::<Result<_, _>>()?;
                ip_text(&bytes)
            }
            Builtin::Ipv6FromIndex => {
                let Value::Str(s) = &first else {
                    return Err(EvalError::Type(
                        "ipv6_from_index() needs a dotted string".into(),
                    ));
                };
                let bytes: Vec<u8> = s
                    .split('.')
                    .map(|p| {
                        p.trim()
                            .parse::<u8>()
                            .map_err(|_| EvalError::Value(format!("`{s}` is not dotted bytes")))
                    })
                    .collect::<Result<_, _>>()?;
                if bytes.len() != 16 {
                    return Err(EvalError::Value(format!("`{s}` is not 16 bytes")));
                }
                ip_text(&bytes)
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

/// Dict keys are strings (JSON object keys); integer keys are written in decimal.
fn dict_key(k: Value) -> Result<String, EvalError> {
    match k {
        Value::Str(s) => Ok(s),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(EvalError::Type(format!(
            "dict keys must be strings or integers, not {}",
            other.type_name()
        ))),
    }
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address as text, IPv6 compressed as Python's
/// `ipaddress` writes it.
fn ip_text(bytes: &[u8]) -> Result<Value, EvalError> {
    match bytes.len() {
        4 => Ok(Value::Str(format!(
            "{}.{}.{}.{}",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ))),
        16 => {
            let mut groups = [0u16; 8];
            for (g, pair) in groups.iter_mut().zip(bytes.chunks_exact(2)) {
                *g = u16::from_be_bytes([pair[0], pair[1]]);
            }
            Ok(Value::Str(ipv6_text(&groups)))
        }
        n => Err(EvalError::Value(format!("{n} bytes are not an IP address"))),
    }
}

/// Python's `str(IPv6Address)` (before 3.13): hex groups without leading zeros, the first
/// longest run of two or more zero groups as `::`, and no dotted IPv4 tail even for a
/// mapped address (Rust's `Ipv6Addr` writes `::ffff:1.2.3.4`; Python `::ffff:102:304`).
fn ipv6_text(groups: &[u16; 8]) -> String {
    let (mut best, mut best_len) = (0, 0);
    let mut i = 0;
    while i < 8 {
        let start = i;
        while i < 8 && groups[i] == 0 {
            i += 1;
        }
        if i - start > best_len {
            (best, best_len) = (start, i - start);
        }
        i += 1;
    }
    let hex = |gs: &[u16]| {
        gs.iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best_len < 2 {
        return hex(groups);
    }
    format!(
        "{}::{}",
        hex(&groups[..best]),
        hex(&groups[best + best_len..])
    )
}

#[cfg(test)]
mod ip_tests {
    use super::ipv6_text;

    #[test]
    fn ipv6_is_written_as_python_writes_it() {
        let cases: [([u16; 8], &str); 7] = [
            ([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304], "::ffff:102:304"),
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"),
            ([0; 8], "::"),
            ([0, 0, 0, 0, 0, 0, 0, 1], "::1"),
            ([1, 0, 0, 0, 0, 0, 0, 0], "1::"),
            ([1, 0, 2, 0, 0, 3, 0, 0], "1:0:2::3:0:0"),
            ([0x2001, 0xdb8, 1, 2, 3, 4, 5, 6], "2001:db8:1:2:3:4:5:6"),
        ];
        for (groups, want) in cases {
            assert_eq!(ipv6_text(&groups), want, "{groups:x?}");
        }
    }
}

thread_local! {
    /// Compiled patterns: vendor definitions match the same few patterns against many names.
    static PATTERNS: RefCell<HashMap<String, Result<regex::Regex, regex::Error>>> = RefCell::new(HashMap::new());
}

/// `re.match(pattern, text)`: the pattern must match at the start of the text.
fn regex_match(pattern: &str, text: &str) -> Result<bool, EvalError> {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let compiled = cache
            .entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(&format!("^(?:{pattern})")));
        match compiled {
            Ok(re) => Ok(re.is_match(text)),
            Err(e) => Err(EvalError::Value(format!("bad pattern `{pattern}`: {e}"))),
        }
    })
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
            // Nested lists count whole: `[[2] * 1000] * 1000` is a million items.
            let times = repeat_count(n, v.iter().map(weight).sum())?;
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

/// Refuses to build a string of `len` bytes past [`MAX_REPEAT_LEN`].
fn built_size(len: usize) -> Result<(), EvalError> {
    if len > MAX_REPEAT_LEN {
        return Err(EvalError::Overflow(format!(
            "the string would be {len} bytes (limit {MAX_REPEAT_LEN})"
        )));
    }
    Ok(())
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
