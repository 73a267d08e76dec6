//! Values of the expression language and the Python rules they follow: truthiness,
//! equality across int and float, `int()`/`float()`/`str()` conversions and float `repr`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// A table or dict: string key (an SNMP index, a static key) -> value, in insertion order
/// (a walked table in walk order), as Python's dicts iterate.
pub type Table = indexmap::IndexMap<String, Value>;

/// What an expression evaluates to. Tables are referred to by their slot in the
/// evaluation environment, so values stay plain data without borrowing it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// One of the environment's tables, by slot.
    Table(usize),
    /// A dict computed by an expression (a dict literal or comprehension).
    Dict(Arc<Table>),
}

/// Why one evaluation failed; the Python exception class it stands for is in the name.
/// The DSL treats every one of them the same way (the target is skipped for that index),
/// so they only need to be clear in logs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("KeyError: {0}")]
    Key(String),
    #[error("TypeError: {0}")]
    Type(String),
    #[error("ValueError: {0}")]
    Value(String),
    #[error("ZeroDivisionError: division by zero")]
    ZeroDivision,
    #[error("OverflowError: {0}")]
    Overflow(String),
    #[error("NameError: {0}")]
    Name(String),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Table(_) | Value::Dict(_) => "dict",
        }
    }

    /// Python truthiness; a table's length needs the environment, so the caller passes it.
    pub fn truthy(&self, table_len: impl Fn(usize) -> usize) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(v) | Value::Tuple(v) => !v.is_empty(),
            Value::Table(t) => table_len(*t) != 0,
            Value::Dict(d) => !d.is_empty(),
        }
    }

    /// A number as f64 (bools count as 0/1, as in Python), or `None` for non-numbers.
    pub fn as_number(&self) -> Option<Num> {
        match self {
            Value::Bool(b) => Some(Num::Int(i128::from(*b))),
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Float(f) => Some(Num::Float(*f)),
            _ => None,
        }
    }

    /// Python `==`: numbers compare by value across int/float/bool, sequences
    /// element-wise, different kinds are simply unequal.
    pub fn py_eq(&self, other: &Value) -> bool {
        if let (Some(a), Some(b)) = (self.as_number(), other.as_number()) {
            return a.cmp_num(b) == Some(Ordering::Equal);
        }
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (Value::Table(a), Value::Table(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| v.py_eq(w)))
            }
            _ => false,
        }
    }

    /// Python 3 ordering (`<` etc.): numbers, strings and same-kind sequences only.
    pub fn py_cmp(&self, other: &Value) -> Result<Ordering, EvalError> {
        if let (Some(a), Some(b)) = (self.as_number(), other.as_number()) {
            // NaN compares false both ways; report it as "not less, not greater".
            return Ok(a.cmp_num(b).unwrap_or(Ordering::Equal));
        }
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Ok(a.cmp(b)),
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                for (x, y) in a.iter().zip(b) {
                    if !x.py_eq(y) {
                        return x.py_cmp(y);
                    }
                }
                Ok(a.len().cmp(&b.len()))
            }
            _ => Err(EvalError::Type(format!(
                "'<' not supported between instances of '{}' and '{}'",
                self.type_name(),
                other.type_name()
            ))),
        }
    }

    /// Python `int(x)`: strings are parsed (surrounding whitespace allowed), floats truncate.
    pub fn to_int(&self) -> Result<Value, EvalError> {
        match self {
            Value::Bool(b) => Ok(Value::Int(i128::from(*b))),
            Value::Int(i) => Ok(Value::Int(*i)),
            Value::Float(f) => {
                if !f.is_finite() {
                    return Err(EvalError::Overflow(format!(
                        "cannot convert float {} to integer",
                        float_repr(*f)
                    )));
                }
                let t = f.trunc();
                if t.abs() >= 1.7e38 {
                    return Err(EvalError::Overflow("int too large".into()));
                }
                Ok(Value::Int(t as i128))
            }
            Value::Str(s) => parse_py_int(s).map(Value::Int).ok_or_else(|| {
                EvalError::Value(format!("invalid literal for int() with base 10: '{s}'"))
            }),
            other => Err(EvalError::Type(format!(
                "int() argument must be a string or a number, not '{}'",
                other.type_name()
            ))),
        }
    }

    /// Python `float(x)`.
    pub fn to_float(&self) -> Result<Value, EvalError> {
        match self.as_number() {
            Some(n) => Ok(Value::Float(n.as_f64())),
            None => match self {
                Value::Str(s) => parse_py_float(s).map(Value::Float).ok_or_else(|| {
                    EvalError::Value(format!("could not convert string to float: '{s}'"))
                }),
                other => Err(EvalError::Type(format!(
                    "float() argument must be a string or a number, not '{}'",
                    other.type_name()
                ))),
            },
        }
    }

    /// Python `str(x)` for the kinds a dimension can hold.
    pub fn to_str(&self) -> Result<String, EvalError> {
        match self {
            Value::None => Ok("None".into()),
            Value::Bool(true) => Ok("True".into()),
            Value::Bool(false) => Ok("False".into()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(float_repr(*f)),
            Value::Str(s) => Ok(s.clone()),
            Value::List(items) | Value::Tuple(items) => {
                let parts: Result<Vec<String>, EvalError> = items.iter().map(repr).collect();
                let inner = parts?.join(", ");
                Ok(match self {
                    Value::Tuple(v) if v.len() == 1 => format!("({inner},)"),
                    Value::Tuple(_) => format!("({inner})"),
                    _ => format!("[{inner}]"),
                })
            }
            Value::Table(_) => Err(EvalError::Type("str() of a table is not supported".into())),
            Value::Dict(d) => {
                let parts: Result<Vec<String>, EvalError> = d
                    .iter()
                    .map(|(k, v)| Ok(format!("'{k}': {}", repr(v)?)))
                    .collect();
                Ok(format!("{{{}}}", parts?.join(", ")))
            }
        }
    }
}

fn repr(v: &Value) -> Result<String, EvalError> {
    match v {
        Value::Str(s) => Ok(format!("'{s}'")),
        other => other.to_str(),
    }
}

/// A number with Python's int/float distinction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Exact comparison, as Python compares ints with floats (no rounding of the int).
    fn cmp_num(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
            (Num::Int(a), Num::Float(b)) => int_cmp_float(a, b),
            (Num::Float(a), Num::Int(b)) => int_cmp_float(b, a).map(Ordering::reverse),
        }
    }
}

fn int_cmp_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^127: beyond i128 either way.
    const LIMIT: f64 = 1.7014118346046923e38;
    if f >= LIMIT {
        return Some(Ordering::Less);
    }
    if f < -LIMIT {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    match i.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)),
        other => Some(other),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "<{}>", self.type_name()),
        }
    }
}

/// `int("  -42 ")`; digits may be separated by single underscores, as Python allows.
pub fn parse_py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // The usual text (an SNMP number): no underscores to drop, nothing to copy.
        let n: i128 = digits.parse().ok()?;
        return Some(if neg { -n } else { n });
    }
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n: i128 = clean.parse().ok()?;
    Some(if neg { -n } else { n })
}

/// `float(" 1.5e3 ")`, also `inf`, `-infinity` and `nan` in any case.
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        let v = if unsigned == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if lower.starts_with('-') { -v } else { v });
    }
    // Rust accepts a few spellings Python does not ("1." is fine in both); refuse
    // anything that is not plain decimal/exponent syntax.
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
    {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation
/// for exponents -4..16 (always with a `.0` when integral) and `1e+16` style outside.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e6", "-5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            let zeros = "0".repeat(point.unsigned_abs() as usize);
            format!("{sign}0.{zeros}{digits}")
        } else {
            let point = point as usize;
            if digits.len() <= point {
                let zeros = "0".repeat(point - digits.len());
                format!("{sign}{digits}{zeros}.0")
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { "-" } else { "+" };
        format!("{sign}{mant}e{esign}{:02}", exp.abs())
    }
}

/// Python 3 `round(x, n)` for floats: the correctly rounded decimal (ties to even on
/// the exact binary value, which is what formatting with a precision does).
pub fn round_float(x: f64, ndigits: i64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if ndigits >= 0 {
        let n = ndigits.min(300) as usize;
        format!("{x:.n$}").parse().unwrap_or(x)
    } else {
        let p = 10f64.powi(ndigits.unsigned_abs().min(308) as i32);
        let q = x / p;
        let r = q.round();
        // Ties to even, as Python does.
        let r = if (q - q.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
            r - q.signum()
        } else {
            r
        };
        r * p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (84.2, "84.2"),
            (93.2, "93.2"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e22, "1e+22"),
            (100.0, "100.0"),
        ] {
            assert_eq!(float_repr(f), s, "{f}");
        }
    }

    #[test]
    fn conversions_follow_python() {
        assert_eq!(Value::Str(" 42 ".into()).to_int(), Ok(Value::Int(42)));
        assert_eq!(Value::Str("-7".into()).to_int(), Ok(Value::Int(-7)));
        assert_eq!(
            Value::Str("4.5".into()).to_int(),
            Err(EvalError::Value(
                "invalid literal for int() with base 10: '4.5'".into()
            ))
        );
        assert_eq!(
            Value::Str("".into()).to_int(),
            Err(EvalError::Value(
                "invalid literal for int() with base 10: ''".into()
            ))
        );
        assert_eq!(Value::Float(-3.9).to_int(), Ok(Value::Int(-3)));
        assert_eq!(Value::Str("4.5".into()).to_float(), Ok(Value::Float(4.5)));
        assert_eq!(
            Value::Str("1e3".into()).to_float(),
            Ok(Value::Float(1000.0))
        );
        assert_eq!(
            Value::Str("abc".into()).to_float(),
            Err(EvalError::Value(
                "could not convert string to float: 'abc'".into()
            ))
        );
        assert_eq!(
            Value::None.to_int(),
            Err(EvalError::Type(
                "int() argument must be a string or a number, not 'NoneType'".into()
            ))
        );
        assert_eq!(Value::Int(3).to_str().unwrap(), "3");
        assert_eq!(Value::Float(3.0).to_str().unwrap(), "3.0");
        assert!(Value::Int(1).py_eq(&Value::Float(1.0)));
        assert!(!Value::Int(1).py_eq(&Value::Str("1".into())));
        assert_eq!(
            Value::Str("a".into()).py_cmp(&Value::Int(1)),
            Err(EvalError::Type(
                "'<' not supported between instances of 'str' and 'int'".into()
            ))
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(round_float(2.675, 2), 2.67); // 2.675 is 2.67499999... in binary
        assert_eq!(round_float(0.125, 2), 0.12); // exact tie: to even
        assert_eq!(round_float(93.2, 2), 93.2);
        assert_eq!(round_float(1234.5, -1), 1230.0);
    }
}
