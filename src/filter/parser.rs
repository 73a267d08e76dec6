//! Recursive-descent parser: filter text to [`Expr`].
//!
//! ```text
//! expr      := condition ( ("AND" | "OR") condition )*
//! condition := lval op rval | lval ["NOT"] "LIKE" rval | lval ["NOT"] "IN" "(" rval ("," rval)* ")"
//! op        := "=" | "!=" | "eq" | "ne"
//! lval      := resource_site | resource_class | resource_subclass | resource_type | resource_id
//!            | resource_endpoint | "resource_metadata" "." NAME
//! rval      := double-quoted string
//! ```
//!
//! Every error names what was expected at the first token that does not fit,
//! and adds a note for the mistakes people actually make (parentheses,
//! `resource_plugin`, single quotes, `==`, `&&`).

use super::ast::{Condition, Connective, Expr, Field, Predicate};
use super::error::FilterError;
use super::lexer::{Lexer, Token, TokenKind};
use super::like::LikePattern;
use super::CoreField;

const EXPECTED_FIELD: &str = "a field (resource_site, resource_class, resource_subclass, \
     resource_type, resource_id, resource_endpoint or resource_metadata.NAME)";
const EXPECTED_OPERATOR: &str = "an operator (=, !=, eq, ne, LIKE, NOT LIKE, IN or NOT IN)";
const EXPECTED_VALUE: &str = "a double-quoted value";
const EXPECTED_CONNECTIVE: &str = "\"AND\" or \"OR\"";
const NOTE_NO_PARENTHESES: &str = "parentheses for grouping are not supported";

/// Parses a whole filter; trailing input is an error.
pub(crate) fn parse(input: &str) -> Result<Expr, FilterError> {
    let mut parser = Parser {
        input,
        lexer: Lexer::new(input),
    };
    let first = parser.condition()?;
    let mut rest = Vec::new();
    loop {
        let token = parser.lexer.next_token()?;
        let connective = match &token.kind {
            TokenKind::End => return Ok(Expr { first, rest }),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("AND") => Connective::And,
            TokenKind::Word(w) if w.eq_ignore_ascii_case("OR") => Connective::Or,
            _ => {
                let err = parser.error(&token, EXPECTED_CONNECTIVE);
                return Err(match &token.kind {
                    TokenKind::LParen | TokenKind::RParen => err.with_note(NOTE_NO_PARENTHESES),
                    TokenKind::Other('&') => err.with_note("write AND, not &&"),
                    TokenKind::Other('|') => err.with_note("write OR, not ||"),
                    _ => err,
                });
            }
        };
        rest.push((connective, parser.condition()?));
    }
}

struct Parser<'a> {
    input: &'a str,
    lexer: Lexer<'a>,
}

impl Parser<'_> {
    fn error(&self, found: &Token, expected: &str) -> FilterError {
        FilterError::new(self.input, found.start, expected, found.kind.describe())
    }

    fn condition(&mut self) -> Result<Condition, FilterError> {
        let field = self.field()?;
        let token = self.lexer.next_token()?;
        let (negated, predicate) = match &token.kind {
            TokenKind::Eq => (false, Predicate::Equals(self.value()?)),
            TokenKind::NotEq => (true, Predicate::Equals(self.value()?)),
            // `eq`/`ne` are in the original grammar but were passed verbatim
            // to SQLite, which has no such operators, so any filter using them
            // failed at query time. Reading them as `=`/`!=` is what their
            // author evidently meant.
            TokenKind::Word(w) if w.eq_ignore_ascii_case("eq") => {
                (false, Predicate::Equals(self.value()?))
            }
            TokenKind::Word(w) if w.eq_ignore_ascii_case("ne") => {
                (true, Predicate::Equals(self.value()?))
            }
            TokenKind::Word(w) if w.eq_ignore_ascii_case("LIKE") => (false, self.like()?),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("IN") => (false, self.in_list()?),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("NOT") => {
                let token = self.lexer.next_token()?;
                match &token.kind {
                    TokenKind::Word(w) if w.eq_ignore_ascii_case("LIKE") => (true, self.like()?),
                    TokenKind::Word(w) if w.eq_ignore_ascii_case("IN") => (true, self.in_list()?),
                    _ => return Err(self.error(&token, "\"LIKE\" or \"IN\" after \"NOT\"")),
                }
            }
            TokenKind::Other('<' | '>') => {
                return Err(self
                    .error(&token, EXPECTED_OPERATOR)
                    .with_note("values are strings; there is no ordering comparison"))
            }
            TokenKind::Other('!') => {
                return Err(self
                    .error(&token, EXPECTED_OPERATOR)
                    .with_note("write != for \"not equal\""))
            }
            _ => return Err(self.error(&token, EXPECTED_OPERATOR)),
        };
        Ok(Condition {
            field,
            negated,
            predicate,
        })
    }

    fn field(&mut self) -> Result<Field, FilterError> {
        let token = self.lexer.next_token()?;
        let err = self.error(&token, EXPECTED_FIELD);
        let word = match &token.kind {
            TokenKind::Word(w) => w,
            TokenKind::LParen => return Err(err.with_note(NOTE_NO_PARENTHESES)),
            TokenKind::End if self.input.trim().is_empty() => {
                return Err(err.with_note("the filter is empty"))
            }
            _ => return Err(err),
        };
        if let Some(core) = CoreField::from_name(word) {
            return Ok(Field::Core(core));
        }
        if word.eq_ignore_ascii_case("resource_metadata") {
            return self.metadata_key().map(Field::Metadata);
        }
        Err(if word.eq_ignore_ascii_case("resource_plugin") {
            err.with_note("resource_plugin is not filterable")
        } else if word.eq_ignore_ascii_case("NOT") {
            err.with_note("NOT only goes before LIKE or IN, as in: resource_site NOT IN (\"dc1\")")
        } else {
            err
        })
    }

    /// `"." NAME` after `resource_metadata`. The key is lowercased because the
    /// original lowercased the whole field token (pyparsing `downcaseTokens`),
    /// key included, before comparing it case-sensitively with stored keys.
    fn metadata_key(&mut self) -> Result<String, FilterError> {
        let token = self.lexer.next_token()?;
        if token.kind != TokenKind::Dot {
            return Err(self.error(
                &token,
                "\".\" and a metadata key after \"resource_metadata\" (as in resource_metadata.os_name)",
            ));
        }
        let token = self.lexer.next_token()?;
        match token.kind {
            TokenKind::Word(key) => Ok(key.to_ascii_lowercase()),
            _ => Err(self.error(
                &token,
                "a metadata key (letters, digits and _) after \"resource_metadata.\"",
            )),
        }
    }

    fn like(&mut self) -> Result<Predicate, FilterError> {
        Ok(Predicate::Like(LikePattern::new(&self.value()?)))
    }

    /// `"(" rval ("," rval)* ")"` after `IN`.
    fn in_list(&mut self) -> Result<Predicate, FilterError> {
        let token = self.lexer.next_token()?;
        if token.kind != TokenKind::LParen {
            return Err(self
                .error(&token, "\"(\" after \"IN\"")
                .with_note("IN takes a list, as in: resource_site IN (\"dc1\", \"dc2\")"));
        }
        if self.lexer.peek()?.kind == TokenKind::RParen {
            let token = self.lexer.next_token()?;
            return Err(self
                .error(&token, EXPECTED_VALUE)
                .with_note("an IN list needs at least one value"));
        }
        let mut values = vec![self.value()?];
        loop {
            let token = self.lexer.next_token()?;
            match token.kind {
                TokenKind::RParen => return Ok(Predicate::In(values)),
                TokenKind::Comma => values.push(self.value()?),
                _ => {
                    return Err(self.error(&token, "\",\" or \")\" in the IN list"));
                }
            }
        }
    }

    fn value(&mut self) -> Result<String, FilterError> {
        let token = self.lexer.next_token()?;
        let err = self.error(&token, EXPECTED_VALUE);
        match token.kind {
            TokenKind::Str(value) => Ok(value),
            TokenKind::Eq => Err(err.with_note("write a single = for equality")),
            TokenKind::Other('\'') => Err(err.with_note("values take double quotes, not single")),
            TokenKind::Word(w) => {
                Err(err.with_note(format!("values must be quoted, as in \"{w}\"")))
            }
            TokenKind::RParen => Err(err.with_note("no value before \")\"")),
            _ => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: Field, negated: bool, predicate: Predicate) -> Condition {
        Condition {
            field,
            negated,
            predicate,
        }
    }

    fn core_eq(field: CoreField, value: &str) -> Condition {
        cond(Field::Core(field), false, Predicate::Equals(value.into()))
    }

    fn err(input: &str) -> FilterError {
        parse(input).expect_err(input)
    }

    #[test]
    fn spec_examples_parse() {
        let examples = [
            r#"resource_class = "network""#,
            r#"resource_class = "network" AND resource_type = "arista""#,
            r#"resource_class = "network" AND resource_subclass IN ("msr", "par", "pat")"#,
            r#"resource_class = "network" AND resource_type = "cisco" AND resource_metadata.os_name LIKE "CISCO IOS%""#,
            r#"resource_class = "network" AND resource_type = "juniper" AND resource_metadata.model LIKE "SRX%""#,
            r#"resource_site NOT IN ("dc1", "dc2")"#,
            r#"resource_metadata.os_version LIKE "4%" OR resource_site = "dc1""#,
        ];
        for example in examples {
            let expr = parse(example).expect(example);
            // Canonical form of these is the input itself.
            assert_eq!(expr.to_string(), example);
        }
    }

    #[test]
    fn parses_structure() {
        let expr = parse(
            r#"resource_class = "network" AND resource_subclass IN ("msr", "par") OR resource_metadata.model NOT LIKE "SRX%""#,
        )
        .expect("parses");
        assert_eq!(expr.first, core_eq(CoreField::Class, "network"));
        assert_eq!(
            expr.rest,
            vec![
                (
                    Connective::And,
                    cond(
                        Field::Core(CoreField::Subclass),
                        false,
                        Predicate::In(vec!["msr".into(), "par".into()])
                    )
                ),
                (
                    Connective::Or,
                    cond(
                        Field::Metadata("model".into()),
                        true,
                        Predicate::Like(LikePattern::new("SRX%"))
                    )
                ),
            ]
        );
    }

    #[test]
    fn keywords_and_fields_are_case_insensitive() {
        let lower = parse(
            r#"resource_site not in ("a") and resource_id like "x%" or resource_type != "t""#,
        )
        .expect("lower");
        let mixed = parse(
            r#"Resource_SITE Not In ("a") AnD RESOURCE_ID LiKe "x%" oR resource_Type != "t""#,
        )
        .expect("mixed");
        assert_eq!(lower, mixed);
    }

    #[test]
    fn eq_and_ne_mean_equals_and_not_equals() {
        assert_eq!(
            parse(r#"resource_site eq "a""#).expect("eq"),
            parse(r#"resource_site = "a""#).expect("=")
        );
        assert_eq!(
            parse(r#"resource_site NE "a""#).expect("ne"),
            parse(r#"resource_site != "a""#).expect("!=")
        );
    }

    #[test]
    fn metadata_key_is_lowercased_and_may_be_spaced() {
        let expr = parse(r#"RESOURCE_METADATA . OS_Name = "x""#).expect("parses");
        assert_eq!(expr.first.field, Field::Metadata("os_name".into()));
        let expr = parse(r#"resource_metadata._resource_ttl = "604800""#).expect("parses");
        assert_eq!(expr.first.field, Field::Metadata("_resource_ttl".into()));
    }

    #[test]
    fn values_keep_case_and_escapes() {
        let expr = parse(r#"resource_id = "A \"quoted\" \\ value""#).expect("parses");
        assert_eq!(
            expr.first.predicate,
            Predicate::Equals(r#"A "quoted" \ value"#.into())
        );
    }

    #[test]
    fn trailing_input_names_the_token() {
        let e = err(r#"resource_class = "network" resource_type = "arista""#);
        assert_eq!(e.position, 27);
        assert_eq!(e.expected, r#""AND" or "OR""#);
        assert_eq!(e.found, r#""resource_type""#);
        assert!(e.to_string().starts_with(
            r#"resource filter: at column 28: expected "AND" or "OR", found "resource_type""#
        ));
    }

    #[test]
    fn resource_plugin_is_not_filterable() {
        let e = err(r#"resource_plugin = "x""#);
        assert_eq!(e.position, 0);
        assert_eq!(e.found, r#""resource_plugin""#);
        assert!(e.to_string().contains("resource_plugin is not filterable"));
    }

    #[test]
    fn parentheses_are_refused_clearly() {
        let e = err(r#"(resource_site = "a")"#);
        assert_eq!((e.position, e.found.as_str()), (0, r#""(""#));
        assert!(e
            .to_string()
            .contains("parentheses for grouping are not supported"));

        let e = err(r#"resource_site = "a" AND (resource_id = "b" OR resource_id = "c")"#);
        assert_eq!(e.position, 24);
        assert!(e.to_string().contains("not supported"));

        let e = err(r#"resource_site = "a")"#);
        assert_eq!(e.expected, r#""AND" or "OR""#);
        assert!(e.to_string().contains("not supported"));
    }

    #[test]
    fn unknown_field() {
        let e = err(r#"resource_name = "a""#);
        assert_eq!(e.expected, EXPECTED_FIELD);
        assert_eq!(e.found, r#""resource_name""#);
        let e = err(r#"resource_site = "a" AND site = "b""#);
        assert_eq!((e.position, e.found.as_str()), (24, r#""site""#));
    }

    #[test]
    fn missing_value() {
        let e = err("resource_site =");
        assert_eq!((e.position, e.expected.as_str()), (15, EXPECTED_VALUE));
        assert_eq!(e.found, "end of input");
        let e = err(r#"resource_site = AND resource_id = "x""#);
        assert_eq!(e.position, 16);
        assert_eq!(e.found, r#""AND""#);
        assert!(e.to_string().contains("values must be quoted"));
    }

    #[test]
    fn missing_operator_and_condition() {
        let e = err("resource_site");
        assert_eq!((e.position, e.expected.as_str()), (13, EXPECTED_OPERATOR));
        let e = err(r#"resource_site = "a" AND"#);
        assert_eq!((e.position, e.expected.as_str()), (23, EXPECTED_FIELD));
        assert_eq!(e.found, "end of input");
        let e = err(r#"resource_site < "a""#);
        assert!(e.to_string().contains("no ordering comparison"));
    }

    #[test]
    fn empty_input() {
        for input in ["", "   "] {
            let e = err(input);
            assert_eq!(e.expected, EXPECTED_FIELD);
            assert_eq!(e.found, "end of input");
            assert!(e.to_string().contains("the filter is empty"));
        }
    }

    #[test]
    fn unterminated_string() {
        let e = err(r#"resource_site = "dc1"#);
        assert_eq!(e.position, 16);
        assert_eq!(e.found, "end of input");
        assert!(e.expected.contains("closing double quote"));
    }

    #[test]
    fn earlier_error_wins_over_later_unterminated_string() {
        let e = err(r#"resource_site = "a" resource_id = "b"#);
        assert_eq!((e.position, e.expected.as_str()), (20, EXPECTED_CONNECTIVE));
    }

    #[test]
    fn in_list_errors() {
        let e = err("resource_site IN ()");
        assert_eq!((e.position, e.found.as_str()), (18, r#"")""#));
        assert!(e.to_string().contains("at least one value"));

        let e = err(r#"resource_site IN ("a",)"#);
        assert_eq!((e.position, e.expected.as_str()), (22, EXPECTED_VALUE));

        let e = err(r#"resource_site IN ("a" "b")"#);
        assert_eq!(e.position, 22);
        assert!(e.expected.contains("\",\" or \")\""));

        let e = err(r#"resource_site IN ("a""#);
        assert_eq!((e.position, e.found.as_str()), (21, "end of input"));

        let e = err(r#"resource_site IN "a""#);
        assert_eq!(e.expected, r#""(" after "IN""#);
    }

    #[test]
    fn not_must_precede_like_or_in() {
        let e = err(r#"resource_site NOT = "a""#);
        assert_eq!(e.position, 18);
        assert_eq!(e.expected, r#""LIKE" or "IN" after "NOT""#);
        let e = err(r#"NOT resource_site = "a""#);
        assert!(e.to_string().contains("NOT only goes before LIKE or IN"));
    }

    #[test]
    fn common_slips_get_a_note() {
        assert!(err(r#"resource_site == "a""#)
            .to_string()
            .contains("single = for equality"));
        assert!(err("resource_site = 'a'")
            .to_string()
            .contains("double quotes, not single"));
        assert!(err(r#"resource_site = "a" && resource_id = "b""#)
            .to_string()
            .contains("write AND"));
        assert!(err(r#"resource_site ! "a""#)
            .to_string()
            .contains("write !="));
    }

    #[test]
    fn metadata_field_errors() {
        let e = err(r#"resource_metadata = "a""#);
        assert_eq!(e.position, 18);
        assert!(e.expected.contains("metadata key"));
        let e = err(r#"resource_metadata. = "a""#);
        assert_eq!(e.position, 19);
        assert!(e.expected.starts_with("a metadata key"));
        let e = err(r#"resource_metadata.os-name = "a""#);
        assert_eq!((e.position, e.found.as_str()), (20, r#""-""#));
    }

    #[test]
    fn keywords_need_word_boundaries() {
        // `ANDresource_id` is one word, not AND followed by a field.
        let e = err(r#"resource_site = "a" ANDresource_id = "b""#);
        assert_eq!(e.found, r#""ANDresource_id""#);
        let e = err(r#"resource_sitex = "a""#);
        assert_eq!(e.found, r#""resource_sitex""#);
    }
}
