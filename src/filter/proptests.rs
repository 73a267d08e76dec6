//! Property tests for the whole filter: printing and parsing agree, no input
//! panics the parser, and evaluation agrees with simple reference evaluators
//! written here independently of `eval.rs`.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::like::LikePattern;
use super::tests::Subject;
use super::*;

const METADATA_KEYS: [&str; 4] = ["os_name", "model", "k_1", "x"];

fn core_field() -> impl Strategy<Value = CoreField> {
    proptest::sample::select(CoreField::ALL.to_vec())
}

fn field() -> BoxedStrategy<Field> {
    prop_oneof![
        core_field().prop_map(Field::Core),
        proptest::sample::select(METADATA_KEYS.to_vec()).prop_map(|k| Field::Metadata(k.into())),
    ]
    .boxed()
}

/// Values: mostly from the subjects' small alphabet (so conditions hit),
/// sometimes full of characters that need escaping.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[abAB%_]{0,3}",
        1 => "[a-zA-Z0-9 %_\"\\\\\t\n\r.,()'é日]{0,6}",
    ]
}

fn predicate() -> impl Strategy<Value = Predicate> {
    prop_oneof![
        value().prop_map(Predicate::Equals),
        value().prop_map(|v| Predicate::Like(LikePattern::new(&v))),
        proptest::collection::vec(value(), 1..4).prop_map(Predicate::In),
    ]
}

fn condition_with(field: impl Strategy<Value = Field>) -> impl Strategy<Value = Condition> {
    (field, any::<bool>(), predicate()).prop_map(|(field, negated, predicate)| Condition {
        field,
        negated,
        predicate,
    })
}

fn connective() -> impl Strategy<Value = Connective> {
    prop_oneof![Just(Connective::And), Just(Connective::Or)]
}

fn expr_with(field: BoxedStrategy<Field>) -> impl Strategy<Value = Expr> {
    (
        condition_with(field.clone()),
        proptest::collection::vec((connective(), condition_with(field)), 0..6),
    )
        .prop_map(|(first, rest)| Expr { first, rest })
}

fn expr() -> impl Strategy<Value = Expr> {
    expr_with(field())
}

fn core_expr() -> impl Strategy<Value = Expr> {
    expr_with(core_field().prop_map(Field::Core).boxed())
}

fn subject() -> impl Strategy<Value = Subject> {
    (
        proptest::array::uniform6("[abAB]{0,3}"),
        proptest::collection::btree_map(
            proptest::sample::select(METADATA_KEYS.to_vec()).prop_map(str::to_string),
            "[abAB]{0,3}",
            0..4,
        ),
    )
        .prop_map(|(core, metadata)| Subject { core, metadata })
}

/// Appends a word in random ASCII case, then one or more whitespace characters.
fn word(out: &mut String, w: &str, bit: &mut dyn FnMut() -> bool) {
    out.extend(w.chars().map(|c| {
        if bit() {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        }
    }));
    out.push_str(if bit() { " " } else { " \t\n " });
}

/// Prints an AST with random keyword case, random `eq`/`=` spelling and
/// random whitespace: every spelling must parse to the same AST.
fn print_randomly(expr: &Expr, mut seed: u64) -> String {
    let mut bit = move || {
        // xorshift64: deterministic from the proptest-chosen seed.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed & 1 == 1
    };
    let mut out = String::new();
    for (i, (conn, cond)) in expr.conditions().enumerate() {
        if let Some(conn) = conn {
            word(&mut out, &conn.to_string(), &mut bit);
        } else if i == 0 && bit() {
            out.push(' ');
        }
        match &cond.field {
            Field::Core(f) => word(&mut out, f.name(), &mut bit),
            Field::Metadata(k) => {
                word(&mut out, "resource_metadata", &mut bit);
                out.push('.');
                word(&mut out, k, &mut bit);
            }
        }
        let quoted = |v: &str| format!("\"{}\"", ast::escape(v));
        match (&cond.predicate, cond.negated) {
            (Predicate::Equals(v), negated) => {
                let op = match (negated, bit()) {
                    (false, true) => "=",
                    (false, false) => "eq",
                    (true, true) => "!=",
                    (true, false) => "ne",
                };
                word(&mut out, op, &mut bit);
                out.push_str(&quoted(v));
            }
            (Predicate::Like(p), negated) => {
                if negated {
                    word(&mut out, "not", &mut bit);
                }
                word(&mut out, "like", &mut bit);
                out.push_str(&quoted(p.as_str()));
            }
            (Predicate::In(values), negated) => {
                if negated {
                    word(&mut out, "not", &mut bit);
                }
                word(&mut out, "in", &mut bit);
                out.push('(');
                let list: Vec<String> = values.iter().map(|v| quoted(v)).collect();
                out.push_str(&list.join(if bit() { "," } else { " , " }));
                out.push(')');
            }
        }
        out.push(' ');
    }
    out
}

// ---- reference evaluators, independent of eval.rs and like.rs ----

fn reference_like(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|i| reference_like(rest, &text[i..])),
        Some(('_', rest)) => !text.is_empty() && reference_like(rest, &text[1..]),
        Some((c, rest)) => {
            text.first().is_some_and(|t| c.eq_ignore_ascii_case(t))
                && reference_like(rest, &text[1..])
        }
    }
}

fn reference_condition(cond: &Condition, subject: &Subject) -> bool {
    let value = match &cond.field {
        Field::Core(f) => {
            let i = CoreField::ALL.iter().position(|x| x == f).unwrap_or(0);
            Some(subject.core[i].as_str())
        }
        Field::Metadata(k) => subject.metadata.get(k).map(String::as_str),
    };
    // SQL NULL / inner join: no value, no match, whatever the operator.
    let Some(value) = value else { return false };
    let hit = match &cond.predicate {
        Predicate::Equals(v) => v == value,
        Predicate::In(vs) => vs.contains(&value.to_string()),
        Predicate::Like(p) => {
            let p: Vec<char> = p.as_str().chars().collect();
            let t: Vec<char> = value.chars().collect();
            reference_like(&p, &t)
        }
    };
    if cond.negated {
        !hit
    } else {
        hit
    }
}

/// Boolean precedence by splitting at the first OR: `a OR rest`, where `a`
/// is a run of ANDs.
fn reference_boolean(items: &[(Option<Connective>, &Condition)], subject: &Subject) -> bool {
    // Index 0's keyword is the one that split it off (or none): skip it.
    match items
        .iter()
        .skip(1)
        .position(|(conn, _)| *conn == Some(Connective::Or))
        .map(|i| i + 1)
    {
        Some(i) => {
            reference_boolean(&items[..i], subject) || reference_boolean(&items[i..], subject)
        }
        None => items.iter().all(|(_, c)| reference_condition(c, subject)),
    }
}

/// The spec's description, computed on sets of resource indices as the
/// original's SQL would: the core part as one WHERE clause, the first
/// metadata condition ANDed with it, then INTERSECT/UNION per later one.
fn reference_select(expr: &Expr, fleet: &[Subject]) -> BTreeSet<usize> {
    let all: Vec<(Option<Connective>, &Condition)> = expr.conditions().collect();
    let core: Vec<(Option<Connective>, &Condition)> = all
        .iter()
        .filter(|(_, c)| !c.field.is_metadata())
        .enumerate()
        // The first core condition has no keyword before it in the WHERE clause.
        .map(|(i, (conn, c))| (if i == 0 { None } else { *conn }, *c))
        .collect();
    let metadata: Vec<(Option<Connective>, &Condition)> = all
        .iter()
        .filter(|(_, c)| c.field.is_metadata())
        .copied()
        .collect();
    let matching = |c: &Condition| -> BTreeSet<usize> {
        (0..fleet.len())
            .filter(|&i| reference_condition(c, &fleet[i]))
            .collect()
    };
    let mut selected: BTreeSet<usize> = if core.is_empty() {
        (0..fleet.len()).collect()
    } else {
        (0..fleet.len())
            .filter(|&i| reference_boolean(&core, &fleet[i]))
            .collect()
    };
    for (n, (conn, cond)) in metadata.into_iter().enumerate() {
        let m = matching(cond);
        selected = if n == 0 || conn == Some(Connective::And) {
            selected.intersection(&m).copied().collect()
        } else {
            selected.union(&m).copied().collect()
        };
    }
    selected
}

/// Fragments of the DSL, to build inputs that get deep into the parser.
const FRAGMENTS: [&str; 26] = [
    "resource_site",
    "resource_metadata",
    "resource_plugin",
    ".",
    "os_name",
    "=",
    "!=",
    "!",
    "eq",
    "ne",
    "NOT",
    "LIKE",
    "IN",
    "(",
    ")",
    ",",
    "\"a%\"",
    "\"",
    "\\",
    "AND",
    "OR",
    " ",
    "\n",
    "é",
    "'",
    "x",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_print_parses_back_to_the_same_ast(expr in expr()) {
        let text = expr.to_string();
        let filter = ResourceFilter::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(filter.expr(), &expr);
    }

    #[test]
    fn any_spelling_parses_to_the_same_ast_and_evaluation(
        expr in expr(),
        seed in 1u64..,
        subjects in proptest::collection::vec(subject(), 1..6),
    ) {
        let text = print_randomly(&expr, seed);
        let spelled = ResourceFilter::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(spelled.expr(), &expr, "{:?}", text);
        let canonical = ResourceFilter::parse(&expr.to_string())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        for s in &subjects {
            prop_assert_eq!(spelled.matches(s), canonical.matches(s));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        check_no_panic(&input)?;
    }

    #[test]
    fn dsl_fragment_soup_never_panics(
        parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS.to_vec()), 0..16)
    ) {
        check_no_panic(&parts.join(""))?;
        check_no_panic(&parts.join(" "))?;
    }

    #[test]
    fn core_only_filters_follow_boolean_precedence(
        expr in core_expr(),
        subjects in proptest::collection::vec(subject(), 1..8),
    ) {
        let filter = ResourceFilter::parse(&expr.to_string())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let items: Vec<_> = expr.conditions().collect();
        for s in &subjects {
            prop_assert_eq!(filter.matches(s), reference_boolean(&items, s), "{} on {:?}", expr, s);
        }
    }

    #[test]
    fn mixed_filters_follow_the_set_semantics(
        expr in expr(),
        fleet in proptest::collection::vec(subject(), 1..8),
    ) {
        let filter = ResourceFilter::parse(&expr.to_string())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let selected: BTreeSet<usize> =
            (0..fleet.len()).filter(|&i| filter.matches(&fleet[i])).collect();
        prop_assert_eq!(selected, reference_select(&expr, &fleet), "{}", expr);
    }
}

fn check_no_panic(input: &str) -> Result<(), TestCaseError> {
    match ResourceFilter::parse(input) {
        Ok(filter) => {
            // Whatever parsed must print canonically and parse back the same.
            let again = ResourceFilter::parse(&filter.expr().to_string())
                .map_err(|e| TestCaseError::fail(format!("{input:?}: reparse: {e}")))?;
            prop_assert_eq!(again.expr(), filter.expr());
        }
        Err(err) => {
            prop_assert!(err.position <= input.len());
            prop_assert!(input.is_char_boundary(err.position));
            prop_assert!(!err.expected.is_empty() && !err.found.is_empty());
            let text = err.to_string();
            prop_assert!(text.starts_with("resource filter: at "));
        }
    }
    Ok(())
}
