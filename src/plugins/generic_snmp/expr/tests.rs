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
    assert_eq!(
        eval_at("temp.$index", Some("9")),
        Err(EvalError::Key("'9'".into()))
    );
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
    assert_eq!(
        eval_at("temp.$index", None),
        Err(EvalError::Name("`$index` outside an indexed target".into()))
    );
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
    assert_eq!(
        eval_at("'x' * 10000000", None),
        Err(EvalError::Overflow(
            "repetition would build 10000000 items (limit 1048576)".into()
        ))
    );
    assert_eq!(
        eval_at("'a' - 1", None),
        Err(EvalError::Type(
            "unsupported operand type(s) for -: 'str' and 'int'".into()
        ))
    );
    assert_eq!(
        eval_at("1 in 'abc'", None),
        Err(EvalError::Type(
            "'in <string>' requires string as left operand, not int".into()
        ))
    );
    assert_eq!(
        eval_at("170141183460469231731687303715884105727 + 1", None),
        Err(EvalError::Overflow(
            "integer result of `+` out of range".into()
        ))
    );
}

/// Found by the `expression` fuzz target: `[[6,1*[9*[2]*261]*6362]*23]` took more than
/// 2 GB. Repetition bounded only the outer list's length, and 6,362 copies of a 2,349-item
/// list, copied 23 times, are 340 million items. Nested items now count, each evaluation
/// has a budget of what it builds and copies, and `.replace()` and `.join()` (whose
/// result can be the product of their operands' sizes) are bounded like `*`.
#[test]
fn no_expression_builds_gigabytes() {
    let overflow = |src: &str| match eval_at(src, None) {
        Err(EvalError::Overflow(message)) => message,
        Err(other) => panic!("{src}: {other}"),
        Ok(_) => panic!("{src}: evaluated"),
    };
    assert!(overflow("[[6,1*[9*[2]*261]*6362]*23]").contains("repetition would build"));
    assert!(overflow("[[2] * 1000] * 1100").contains("repetition would build"));
    // Each item small enough, but many of them: the evaluation's budget.
    for src in [
        "[('a' * 1000000) for x in 'a' * 100]",
        "len([[y for y in 'a' * 100000] for x in 'a' * 1000])",
    ] {
        assert!(
            overflow(src).contains("builds or copies more than"),
            "{src}"
        );
    }
    assert!(overflow("('a' * 2000).replace('', 'b' * 1000)").contains("would be"));
    assert!(overflow("('a' * 2000).join(['a'] * 1000)").contains("would be"));
    // What vendor definitions do stays far from the bounds.
    assert_eq!(
        eval_at("len([x for x in [[1, 2]] * 1000 if len(x) == 2])", None),
        Ok(Value::Int(1000))
    );
    assert_eq!(
        eval_at("len('-'.join(['ab'] * 1000).replace('a', 'xyz'))", None),
        Ok(Value::Int(4999))
    );
}

#[test]
fn vendor_definition_forms() {
    let d = |src: &str| eval_at(src, None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let dict = |pairs: &[(&str, Value)]| Value::Dict(std::sync::Arc::new(table(pairs)));
    assert_eq!(
        d("{k: v for (k, v) in power.items() if v == '2'}"),
        dict(&[("9", s("2")), ("13", s("2"))])
    );
    assert_eq!(
        d("{1: 'a', 'b': 2}"),
        dict(&[("1", s("a")), ("b", Value::Int(2))])
    );
    assert_eq!(d("len({k: 1 for k in fan})"), Value::Int(3));
    assert_eq!(d("'1' in {k: 1 for k in fan}"), Value::Bool(true));
    assert_eq!(d("{k: 1 for k in fan}['2']"), Value::Int(1));
    assert_eq!(d("'7.1.0.0'.split('.')[-1]"), s("0"));
    assert_eq!(
        d("'.'.join('0.1.44.144.154.142.1.42'.split('.')[2:6])"),
        s("44.144.154.142")
    );
    assert_eq!(d("'abcdef'[:2] + 'abcdef'[4:]"), s("abef"));
    assert_eq!(
        d("'a celsius b'.replace('celsius', 'fahrenheit')"),
        s("a fahrenheit b")
    );
    assert_eq!(d("' x '.strip()"), s("x"));
    assert_eq!(
        d("'Fan'.startswith('F') and 'Fan'.endswith('n')"),
        Value::Bool(true)
    );
    assert_eq!(d("match('49\\d\\d.+', '4948E')"), Value::Bool(true));
    assert_eq!(d("match('49\\d\\d.+', '4948')"), Value::Bool(false));
    assert_eq!(
        d("match('PEM', 'node0 PEM 1')"),
        Value::Bool(false),
        "anchored at the start"
    );
    assert_eq!(
        d("merge({'a': 1}, {'a': 2, 'b': 3})"),
        dict(&[("a", Value::Int(2)), ("b", Value::Int(3))])
    );
    assert_eq!(
        d("ipv6_from_index('35.3.7.146.0.17.5.4.0.2.55.44.0.0.0.6')"),
        s("2303:792:11:504:2:372c:0:6")
    );
    assert_eq!(
        d("sorted([3, 1, 2])"),
        Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
    );
    assert_eq!(d("any([0, '', 1]) and not all([1, 0])"), Value::Bool(true));
    assert_eq!(d("10.0 ** -1"), Value::Float(0.1));
    // No context while polling.
    assert_eq!(
        eval_at("config('main', 'x')", None),
        Err(EvalError::Name(
            "config() is only available to vendor definitions".into()
        ))
    );
    assert_eq!(
        eval_at("ipv6_from_index('1.2.3')", None),
        Err(EvalError::Value("`1.2.3` is not 16 bytes".into()))
    );
    let err = eval_at("match('(', 'x')", None).unwrap_err();
    assert!(
        matches!(&err, EvalError::Value(m) if m.starts_with("bad pattern `(`: ")),
        "{err}"
    );
}

#[test]
fn octet_strings_decode_to_addresses() {
    let e = compile("ip_from_octets(uptime)", &Doc).unwrap();
    let run = |bytes: &[u8]| {
        let scalars = [Value::Str(bytes.iter().map(|&b| char::from(b)).collect())];
        Env {
            tables: &[],
            scalars: &scalars,
            index: None,
            context: None,
        }
        .eval(&e)
    };
    assert_eq!(run(&[42, 7, 240, 144]), Ok(s("42.7.240.144")));
    let v6 = [
        0x21, 0x31, 0x07, 0xfa, 0x40, 0x11, 0, 4, 0x50, 0, 0, 0x2a, 4, 0, 0x50, 1,
    ];
    assert_eq!(run(&v6), Ok(s("2131:7fa:4011:4:5000:2a:400:5001")));
    assert_eq!(
        run(&[1, 2, 3]),
        Err(EvalError::Value("3 bytes are not an IP address".into()))
    );
}

#[test]
fn config_and_metadata_come_from_the_context() {
    let e = compile(
        "config('main', 'n3k_models', '').split(',')[1].strip() + meta('model', 'unknown')",
        &Doc,
    )
    .unwrap();
    let mut ctx = EvalContext::default();
    ctx.config
        .entry("main".into())
        .or_default()
        .insert("n3k_models".into(), "3048T, 3064".into());
    ctx.metadata.insert("model".into(), "X".into());
    let t = tables();
    let env = Env {
        tables: &t,
        scalars: &[],
        index: None,
        context: Some(&ctx),
    };
    assert_eq!(env.eval(&e), Ok(s("3064X")));
    let e = compile("meta('missing', 'unknown')", &Doc).unwrap();
    assert_eq!(env.eval(&e), Ok(s("unknown")));
    let e = compile("config('main', 'missing')", &Doc).unwrap();
    assert_eq!(env.eval(&e), Err(EvalError::Key("[main] missing".into())));
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

/// Tables iterate in walk order (index 9 before 12), not string order ("12" < "9"), and
/// dicts built from them keep it, so "first match" and "last one wins" pick the same row
/// as the original's Python dicts did.
#[test]
fn tables_and_dicts_iterate_in_walk_order() {
    assert_eq!(eval_at("[k for k in supplies][0]", None), Ok(s("9")));
    assert_eq!(
        eval_at("[k for (k, v) in power.items() if v == '2'][0]", None),
        Ok(s("9"))
    );
    // 9 -> "2", 12 -> "6", 13 -> "2": the last row with "2" wins.
    assert_eq!(
        eval_at("{v: k for (k, v) in power.items()}['2']", None),
        Ok(s("13"))
    );
    assert_eq!(
        eval_at(
            "list({k: v for (k, v) in power.items() if v != '6'}.keys())",
            None
        ),
        Ok(Value::List(vec![s("9"), s("13")]))
    );
}

/// `zip` pairs by position, as long as the shortest input (the Aruba WAP plugin pairs AP
/// addresses and names this way, shifting names when a row is missing).
#[test]
fn zip_pairs_by_position() {
    assert_eq!(
        eval_at(
            "{k: n for (k, ip, n) in zip(supplies.keys(), power.values(), types.values())}",
            None
        ),
        eval_at("{'9': '1', '12': '1'}", None)
    );
    assert_eq!(
        eval_at("len(zip(supplies, power))", None),
        Ok(Value::Int(2))
    );
    assert_eq!(eval_at("zip([1, 2], [])", None), Ok(Value::List(vec![])));
}

/// Nesting is bounded when the expression is compiled, so that neither compiling,
/// evaluating nor dropping a hostile expression can overflow the stack; the bound is far
/// above what documents use.
#[test]
fn nesting_is_bounded_with_a_clear_error() {
    let deep = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let expect_refused = |src: &str| {
        let e = compile(src, &Doc).unwrap_err();
        assert!(
            e.message.contains(&format!(
                "expression nested more than {MAX_DEPTH} levels deep"
            )),
            "{e}"
        );
    };
    // Just inside the bound compiles and evaluates.
    assert_eq!(eval_at(&deep("(", "1", ")", 30), None), Ok(Value::Int(1)));
    assert_eq!(
        eval_at(&vec!["1"; 30].join(" + "), None),
        Ok(Value::Int(30))
    );
    for src in [
        deep("(", "1", ")", 5000),
        deep("[", "1", "]", 5000),
        deep("not ", "True", "", 5000),
        deep("-", "1", "", 5000),
        vec!["1"; 5000].join(" + "),
        vec!["1"; 5000].join(" * "),
        vec!["True"; 5000].join(" and "),
        vec!["2"; 5000].join(" ** "),
        format!("uptime{}", "[0]".repeat(5000)),
        deep("len(", "'x'", ")", 5000),
    ] {
        expect_refused(&src);
    }
}

/// The in-place row lookup gives what evaluating the expression gives, value or error,
/// and declines every other expression.
#[test]
fn a_row_at_index_is_read_in_place_exactly_as_evaluated() {
    let t = tables();
    let scalars = [s("12345")];
    for (src, index) in [
        ("fan.$index", Some("2")),
        ("scale.$index", Some("8")),
        ("descr.$index", Some("1")),
        ("fan.$index", Some("9")),
        ("fan.$index", Some("")),
    ] {
        let e = compile(src, &Doc).unwrap();
        let env = Env {
            tables: &t,
            scalars: &scalars,
            index,
            context: None,
        };
        let fast = env.row_at_index(&e).expect("a row at $index").cloned();
        assert_eq!(fast, env.eval(&e), "{src} at {index:?}");
    }
    assert_eq!(
        eval_at("fan.$index", Some("9")),
        Err(EvalError::Key("'9'".into()))
    );
    let env = Env {
        tables: &t,
        scalars: &scalars,
        index: Some("1"),
        context: None,
    };
    for src in ["int(fan.$index)", "fan['1']", "uptime", "fan.$index + '0'"] {
        let e = compile(src, &Doc).unwrap();
        assert!(env.row_at_index(&e).is_none(), "{src}");
    }
    // Outside an indexed target: left to the evaluator and its error.
    let outside = Env { index: None, ..env };
    let e = compile("fan.$index", &Doc).unwrap();
    assert!(outside.row_at_index(&e).is_none());
}

#[test]
fn integer_text_parses_as_python_int_does() {
    for (text, want) in [
        ("42", Some(42)),
        (" -7 ", Some(-7)),
        ("+3", Some(3)),
        ("1_000", Some(1000)),
        ("007", Some(7)),
        ("18446744073709551615", Some(18446744073709551615)),
        ("1__0", None),
        ("_1", None),
        ("1_", None),
        ("", None),
        ("-", None),
        ("4.0", None),
        ("0x10", None),
        ("1".repeat(40).as_str(), None),
    ] {
        assert_eq!(value::parse_py_int(text), want, "{text:?}");
    }
}
