//! Evaluation tests: every fixture form against hand-computed Python results, plus
//! property tests of the arithmetic and comparison rules.

use proptest::prelude::*;

use super::*;

struct Doc;
impl Names for Doc {
    fn table(&self, name: &str) -> Option<usize> {
        [
            "fan", "temp", "scale", "units", "supplies", "power", "types", "descr",
        ]
        .iter()
        .position(|t| *t == name)
    }
    fn scalar(&self, name: &str) -> Option<usize> {
        (name == "uptime").then_some(0)
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn table(pairs: &[(&str, Value)]) -> Table {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn tables() -> Vec<Table> {
    vec![
        table(&[("1", s("2")), ("2", s("2")), ("3", s("3"))]),
        table(&[("7", s("45")), ("8", s("0"))]),
        table(&[("7", Value::Float(0.1)), ("8", Value::Int(10))]),
        table(&[("1", s("1500"))]),
        table(&[("9", s("PS 1")), ("12", s("PS 2"))]),
        table(&[("9", s("2")), ("12", s("6")), ("13", s("2"))]),
        table(&[("9", s("1")), ("12", s("1")), ("13", s("2"))]),
        table(&[("1", s("Routing Engine 0")), ("2", s("FPC 1"))]),
    ]
}

fn eval_at(src: &str, index: Option<&str>) -> Result<Value, EvalError> {
    let e = compile(src, &Doc).unwrap_or_else(|e| panic!("{src}: {e}"));
    let t = tables();
    let scalars = [s("12345")];
    Env {
        tables: &t,
        scalars: &scalars,
        index,
        context: None,
    }
    .eval(&e)
}

#[test]
fn fixture_forms_evaluate_like_python() {
    assert_eq!(eval_at("temp.$index", Some("7")), Ok(s("45")));
    assert!(matches!(
        eval_at("temp.$index", Some("9")),
        Err(EvalError::Key(_))
    ));
    assert_eq!(eval_at("1", None), Ok(Value::Int(1)));
    assert_eq!(eval_at("'ctrl'", None), Ok(s("ctrl")));
    assert_eq!(
        eval_at(
            "'data' if 'Routing Engine' in descr.$index else 'ctrl'",
            Some("1")
        ),
        Ok(s("data"))
    );
    assert_eq!(
        eval_at(
            "'data' if 'Routing Engine' in descr.$index else 'ctrl'",
            Some("2")
        ),
        Ok(s("ctrl"))
    );
    assert_eq!(
        eval_at("float(units.$index) / 100.0 * scale.$index", Some("1")),
        Err(EvalError::Key("'1'".into()))
    );
    assert_eq!(
        eval_at("float(temp.$index) / 100.0 * scale.$index", Some("8")),
        Ok(Value::Float(0.0))
    );
    assert_eq!(
        eval_at("int(temp.$index) * scale.$index", Some("7")),
        Ok(Value::Float(45.0 * 0.1))
    );
    assert_eq!(
        eval_at("int(temp.$index) * scale.$index", Some("8")),
        Ok(Value::Int(0))
    );
    assert_eq!(
        eval_at("int(temp.$index) * int(temp.$index)", Some("7")),
        Ok(Value::Int(2025))
    );
    assert_eq!(
        eval_at("len([x for x in fan.values() if x == '2'])", None),
        Ok(Value::Int(2))
    );
    assert_eq!(
        eval_at(
            "len([x for x in fan.values() if x in ['1', '2', '3']])",
            None
        ),
        Ok(Value::Int(3))
    );
    assert_eq!(
        eval_at(
            "len([(x,y) for (x,y) in power.items() if x in supplies and y in ['2', '9', '12']])",
            None
        ),
        Ok(Value::Int(1))
    );
    assert_eq!(
        eval_at(
            "len([(x,y) for (x,y) in power.items() if x in supplies and y not in ['6']])",
            None
        ),
        Ok(Value::Int(1))
    );
    assert_eq!(
        eval_at(
            "len([(x,y) for (x,y) in power.items() if x in types and y not in ['6'] and types[x] == $index])",
            Some("1")
        ),
        Ok(Value::Int(1))
    );
    assert_eq!(eval_at("uptime", None), Ok(s("12345")));
    // `$index` outside an index.
    assert!(eval_at("temp.$index", None).is_err());
}

#[test]
fn transforms_apply_to_the_cast_value() {
    let t = tables();
    let env = Env {
        tables: &t,
        scalars: &[],
        index: None,
        context: None,
    };
    let f = compile_lambda("lambda x: round((x * 1.8) + 32, 2) if x != 0 else 0.0").unwrap();
    assert_eq!(env.apply(&f, Value::Float(34.0)), Ok(Value::Float(93.2)));
    assert_eq!(env.apply(&f, Value::Float(29.0)), Ok(Value::Float(84.2)));
    assert_eq!(env.apply(&f, Value::Float(0.0)), Ok(Value::Float(0.0)));
    assert_eq!(env.apply(&f, Value::Int(0)), Ok(Value::Float(0.0)));
    let g = compile_lambda("lambda x: x * 1000000").unwrap();
    assert_eq!(
        env.apply(&g, Value::Int(10000)),
        Ok(Value::Int(10_000_000_000))
    );
    let h = compile_lambda("lambda x: round((x * 1.8) + 32, 2)").unwrap();
    assert_eq!(env.apply(&h, Value::Float(4.5)), Ok(Value::Float(40.1)));
}

#[test]
fn python_operators() {
    assert_eq!(eval_at("7 // -2", None), Ok(Value::Int(-4)));
    assert_eq!(eval_at("-7 % 3", None), Ok(Value::Int(2)));
    assert_eq!(eval_at("7 / 2", None), Ok(Value::Float(3.5)));
    assert_eq!(eval_at("2 ** 10", None), Ok(Value::Int(1024)));
    assert_eq!(eval_at("-2 ** 2", None), Ok(Value::Int(-4)));
    assert_eq!(eval_at("1 < 2 < 3", None), Ok(Value::Bool(true)));
    assert_eq!(eval_at("3 > 2 > 2", None), Ok(Value::Bool(false)));
    assert_eq!(eval_at("0 or 'x'", None), Ok(s("x")));
    assert_eq!(eval_at("'' and 1", None), Ok(s("")));
    assert_eq!(eval_at("'ab' * 2", None), Ok(s("abab")));
    assert_eq!(eval_at("'a' + 'b'", None), Ok(s("ab")));
    assert_eq!(eval_at("round(2.5)", None), Ok(Value::Int(2)));
    assert_eq!(eval_at("min([3, 1, 2])", None), Ok(Value::Int(1)));
    assert_eq!(eval_at("max(3, 4.5)", None), Ok(Value::Float(4.5)));
    assert_eq!(eval_at("sum([1, 2.5])", None), Ok(Value::Float(3.5)));
    assert_eq!(eval_at("len(fan)", None), Ok(Value::Int(3)));
    assert_eq!(eval_at("'9' in supplies", None), Ok(Value::Bool(true)));
    assert_eq!(eval_at("9 in supplies", None), Ok(Value::Bool(false)));
    assert_eq!(eval_at("supplies.get('1', 'none')", None), Ok(s("none")));
    assert_eq!(eval_at("1 / 0", None), Err(EvalError::ZeroDivision));
    assert!(eval_at("'x' * 10000000", None).is_err());
    assert!(matches!(eval_at("'a' - 1", None), Err(EvalError::Type(_))));
    assert!(matches!(
        eval_at("1 in 'abc'", None),
        Err(EvalError::Type(_))
    ));
    assert!(matches!(
        eval_at("170141183460469231731687303715884105727 + 1", None),
        Err(EvalError::Overflow(_))
    ));
}

proptest! {
    /// Integer arithmetic agrees with Python's definitions (floor division, modulo with
    /// the divisor's sign, exact products).
    #[test]
    fn integer_arithmetic_matches_python(a in -1_000_000i64..1_000_000, b in -1000i64..1000) {
        let (a, b) = (i128::from(a), i128::from(b));
        let run = |op: &str| eval_at(&format!("({a}) {op} ({b})"), None);
        prop_assert_eq!(run("+"), Ok(Value::Int(a + b)));
        prop_assert_eq!(run("-"), Ok(Value::Int(a - b)));
        prop_assert_eq!(run("*"), Ok(Value::Int(a * b)));
        if b == 0 {
            prop_assert_eq!(run("//"), Err(EvalError::ZeroDivision));
            prop_assert_eq!(run("%"), Err(EvalError::ZeroDivision));
        } else {
            let q = (a as f64 / b as f64).floor() as i128;
            prop_assert_eq!(run("//"), Ok(Value::Int(q)));
            let r = a - q * b;
            prop_assert_eq!(run("%"), Ok(Value::Int(r)));
            prop_assert!(r == 0 || (r < 0) == (b < 0));
        }
    }

    /// `int(str(n)) == n`, `float(str(x)) == x` and comparisons agree with the numbers.
    #[test]
    fn conversions_round_trip(n in any::<i64>(), x in -1e300f64..1e300, small in any::<i32>()) {
        let n = i128::from(n);
        prop_assert_eq!(Value::Str(n.to_string()).to_int(), Ok(Value::Int(n)));
        prop_assert_eq!(Value::Str(float_repr(x)).to_float(), Ok(Value::Float(x)));
        prop_assert_eq!(Value::Int(n).py_eq(&Value::Float(n as f64)), (n as f64) as i128 == n);
        // Small ints are exact in f64, so the float comparison is the exact one.
        let lt = eval_at(&format!("{small} < {}", float_repr(x)), None);
        prop_assert_eq!(lt, Ok(Value::Bool(f64::from(small) < x)));
    }

    /// Counting comprehensions count exactly the matching values.
    #[test]
    fn comprehension_counts(values in proptest::collection::btree_map("[0-9]{1,3}", "[1-3]", 0..20)) {
        let want = values.values().filter(|v| *v == "2").count() as i128;
        let t: Vec<Table> = vec![values.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))).collect()];
        struct One;
        impl Names for One {
            fn table(&self, n: &str) -> Option<usize> { (n == "t").then_some(0) }
            fn scalar(&self, _: &str) -> Option<usize> { None }
        }
        let e = compile("len([x for x in t.values() if x == '2'])", &One).unwrap();
        let env = Env { tables: &t, scalars: &[], index: None, context: None };
        prop_assert_eq!(env.eval(&e), Ok(Value::Int(want)));
    }

    /// Whatever text a document holds, compiling it never panics, and what compiles
    /// evaluates without panicking.
    #[test]
    fn arbitrary_text_never_panics(src in "[a-z0-9_$.()\\[\\]'+*/%<>=!, -]{0,40}") {
        if let Ok(e) = compile(&src, &Doc) {
            let t = tables();
            let _ = Env { tables: &t, scalars: &[Value::None], index: Some("7"), context: None }.eval(&e);
        }
    }
}
