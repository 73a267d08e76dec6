//! The parsed form of a resource filter.
//!
//! The AST keeps the conditions and their connectives in input order, exactly
//! as written: the odd way the original combines metadata conditions depends
//! on that order (see [`super::eval`]). Its `Display` prints a canonical text
//! (lowercase fields, uppercase keywords, `=`/`!=` for `eq`/`ne`) that parses
//! back to the same AST.

use std::fmt;

use super::like::LikePattern;

/// A fixed resource field that a filter can test (`resource_plugin` cannot be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoreField {
    Site,
    Class,
    Subclass,
    Type,
    Id,
    Endpoint,
}

impl CoreField {
    pub const ALL: [CoreField; 6] = [
        CoreField::Site,
        CoreField::Class,
        CoreField::Subclass,
        CoreField::Type,
        CoreField::Id,
        CoreField::Endpoint,
    ];

    /// The field's name in the DSL and in resource JSON, e.g. `resource_site`.
    pub fn name(self) -> &'static str {
        match self {
            CoreField::Site => "resource_site",
            CoreField::Class => "resource_class",
            CoreField::Subclass => "resource_subclass",
            CoreField::Type => "resource_type",
            CoreField::Id => "resource_id",
            CoreField::Endpoint => "resource_endpoint",
        }
    }

    /// The field named `name`, ASCII case-insensitively.
    pub fn from_name(name: &str) -> Option<CoreField> {
        CoreField::ALL
            .into_iter()
            .find(|field| field.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for CoreField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The left-hand side of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Core(CoreField),
    /// `resource_metadata.<key>`; the key is stored lowercased, as the
    /// original lowercased the whole field token (see the module docs in
    /// [`super`]).
    Metadata(String),
}

impl Field {
    pub fn is_metadata(&self) -> bool {
        matches!(self, Field::Metadata(_))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Core(core) => f.write_str(core.name()),
            Field::Metadata(key) => write!(f, "resource_metadata.{key}"),
        }
    }
}

/// What a condition tests the field value against (before negation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `=` / `eq` (negated: `!=` / `ne`): exact, case-sensitive.
    Equals(String),
    /// `LIKE` (negated: `NOT LIKE`).
    Like(LikePattern),
    /// `IN (...)` (negated: `NOT IN (...)`): exact, case-sensitive; never empty.
    In(Vec<String>),
}

/// One `lval op rval` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: Field,
    /// `!=`, `ne`, `NOT LIKE`, `NOT IN`.
    pub negated: bool,
    pub predicate: Predicate,
}

impl Condition {
    /// The condition applied to a field value (`None`: a metadata key the
    /// resource lacks, which is false whatever the operator; see [`super`]).
    pub fn test(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        let positive = match &self.predicate {
            Predicate::Equals(expected) => value == expected,
            Predicate::Like(pattern) => pattern.matches(value),
            Predicate::In(values) => values.iter().any(|v| v == value),
        };
        positive != self.negated
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.field)?;
        match (&self.predicate, self.negated) {
            (Predicate::Equals(v), false) => write!(f, "= \"{}\"", escape(v)),
            (Predicate::Equals(v), true) => write!(f, "!= \"{}\"", escape(v)),
            (Predicate::Like(p), negated) => {
                let not = if negated { "NOT " } else { "" };
                write!(f, "{not}LIKE \"{}\"", escape(p.as_str()))
            }
            (Predicate::In(values), negated) => {
                let not = if negated { "NOT " } else { "" };
                write!(f, "{not}IN (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{}\"", escape(v))?;
                }
                f.write_str(")")
            }
        }
    }
}

/// `AND` / `OR` between two conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connective {
    And,
    Or,
}

impl fmt::Display for Connective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Connective::And => "AND",
            Connective::Or => "OR",
        })
    }
}

/// A whole filter: `first (connective condition)*`, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub first: Condition,
    pub rest: Vec<(Connective, Condition)>,
}

impl Expr {
    /// Every condition with the connective before it (`None` for the first).
    pub fn conditions(&self) -> impl Iterator<Item = (Option<Connective>, &Condition)> {
        std::iter::once((None, &self.first))
            .chain(self.rest.iter().map(|(conn, cond)| (Some(*conn), cond)))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first)?;
        for (conn, cond) in &self.rest {
            write!(f, " {conn} {cond}")?;
        }
        Ok(())
    }
}

/// Escapes a value for writing it between double quotes in a filter, so the
/// lexer reads back exactly `value`.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_field_names_round_trip() {
        for field in CoreField::ALL {
            assert_eq!(CoreField::from_name(field.name()), Some(field));
            assert_eq!(
                CoreField::from_name(&field.name().to_ascii_uppercase()),
                Some(field)
            );
        }
        assert_eq!(CoreField::from_name("resource_plugin"), None);
        assert_eq!(CoreField::from_name("resource_metadata"), None);
    }

    #[test]
    fn missing_value_is_false_for_every_operator() {
        for negated in [false, true] {
            for predicate in [
                Predicate::Equals("x".into()),
                Predicate::Like(LikePattern::new("%")),
                Predicate::In(vec!["x".into()]),
            ] {
                let cond = Condition {
                    field: Field::Metadata("k".into()),
                    negated,
                    predicate,
                };
                assert!(!cond.test(None), "{cond}");
            }
        }
    }

    #[test]
    fn canonical_display() {
        let expr = Expr {
            first: Condition {
                field: Field::Core(CoreField::Site),
                negated: true,
                predicate: Predicate::In(vec!["dc1".into(), "d\"c\\2".into()]),
            },
            rest: vec![(
                Connective::Or,
                Condition {
                    field: Field::Metadata("os_version".into()),
                    negated: false,
                    predicate: Predicate::Like(LikePattern::new("4%\t")),
                },
            )],
        };
        assert_eq!(
            expr.to_string(),
            r#"resource_site NOT IN ("dc1", "d\"c\\2") OR resource_metadata.os_version LIKE "4%\t""#
        );
    }
}
