//! Resource filter DSL (spec §2.2): the `resource_filter` of polling and
//! enrichment plugins, a SQL-`WHERE`-like selection of resources.
//!
//! ```text
//! resource_class = "network" AND resource_type = "cisco" AND resource_metadata.os_name LIKE "CISCO IOS%"
//! resource_site NOT IN ("dc1", "dc2")
//! ```
//!
//! # Grammar
//!
//! ```text
//! expr      := condition ( ("AND" | "OR") condition )*
//! condition := lval op rval | lval ["NOT"] "LIKE" rval | lval ["NOT"] "IN" "(" rval ("," rval)* ")"
//! op        := "=" | "!=" | "eq" | "ne"
//! lval      := resource_site | resource_class | resource_subclass | resource_type | resource_id
//!            | resource_endpoint | "resource_metadata" "." NAME        ; NAME = [A-Za-z0-9_]+
//! rval      := double-quoted string, backslash escapes
//! ```
//!
//! Keywords and field names are case-insensitive; whitespace between tokens
//! is optional. The whole input must parse. There are no parentheses, and
//! `resource_plugin` cannot be filtered on; both are refused with an error
//! that says so.
//!
//! # Values
//!
//! - `=`, `!=` and `IN` compare exactly (case-sensitive), like SQLite `=`.
//! - `LIKE` is SQLite's: `%` any run, `_` one character, ASCII letters
//!   case-insensitive, no escape character (see [`like`]).
//! - In strings, `\"` is a quote, `\\` a backslash, `\t` `\n` `\r` `\f` the
//!   whitespace characters, and `\x` for any other `x` is `x`.
//!
//! # Choices where the original is broken or silent
//!
//! - **`eq` / `ne`** are read as `=` / `!=`. The original accepted them but
//!   passed them verbatim to SQLite, which has no such operators, so such a
//!   filter failed when run; the intent is plain.
//! - **A metadata key the resource lacks** makes the condition false, for
//!   every operator, `!=`, `NOT LIKE` and `NOT IN` included: the original
//!   matched metadata through an inner join (`key = "k" AND value ...`), so a
//!   resource without the key never matches, as SQL `NULL` comparisons would
//!   also give.
//! - **Metadata key case**: the key in `resource_metadata.NAME` is lowercased
//!   (the original lowercased the whole field token) and then compared
//!   case-sensitively with resource keys, so a key stored with capitals cannot
//!   be selected, as in the original.
//!
//! # How conditions combine
//!
//! As the original (which compiled core fields to a `WHERE` clause and
//! metadata conditions to `INTERSECT`/`UNION` sub-selects), and as spec §2.2
//! prescribes for a faithful reimplementation:
//!
//! 1. The core-field conditions, with the keyword written just before each,
//!    are combined with SQL precedence (`AND` binds tighter than `OR`).
//! 2. The first metadata condition is ANDed with that core part (whatever
//!    keyword precedes it); if there is no core condition, it stands alone.
//! 3. Each later metadata condition is intersected (keyword before it is
//!    `AND`) or united (`OR`) with the result so far, left to right.
//!
//! For the usual `A AND B AND resource_metadata.x LIKE "y%"` this is plain
//! boolean AND. It is not for OR with metadata:
//! `resource_metadata.os_version LIKE "4%" OR resource_site = "dc1"` selects
//! resources in dc1 *with* a 4.x version (rule 2). Deliberate differences
//! from what the original's SQL actually did, following the spec:
//!
//! - The original appended the metadata condition to the core SQL without
//!   parentheses (`c1 OR c2 AND (m)`, i.e. `c1 OR (c2 AND m)`); here the
//!   whole core part is ANDed (`(c1 OR c2) AND m`).
//! - The original emitted all `UNION`s before all `INTERSECT`s (SQLite then
//!   applies them left to right); here they apply in the order written. The
//!   two differ only when later metadata conditions mix `AND` and `OR`.
//! - A filter whose first condition is a metadata one produced invalid SQL
//!   (a dangling `AND`/`OR`) in the original; here it works as above.

mod ast;
mod error;
mod eval;
mod lexer;
pub mod like;
mod parser;

#[cfg(test)]
mod proptests;

use std::fmt;
use std::str::FromStr;

pub use ast::{Condition, Connective, CoreField, Expr, Field, Predicate};
pub use error::FilterError;

/// Something a filter can be evaluated against; implemented by the resource
/// model (and by test doubles).
pub trait FilterSubject {
    /// The value of a core field (`resource_site`, ...).
    fn core_field(&self, field: CoreField) -> &str;
    /// The value of metadata key `key`, if the resource has it. `key` is
    /// lowercase (see the module docs).
    fn metadata(&self, key: &str) -> Option<&str>;
}

/// A parsed resource filter: the original text, its AST and its evaluation plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFilter {
    text: String,
    expr: Expr,
    plan: eval::Plan,
}

impl ResourceFilter {
    /// Parses a filter; see the module docs for the grammar.
    pub fn parse(input: &str) -> Result<ResourceFilter, FilterError> {
        let expr = parser::parse(input)?;
        let plan = eval::Plan::new(&expr);
        Ok(ResourceFilter {
            text: input.to_string(),
            expr,
            plan,
        })
    }

    /// Whether `subject` is selected by this filter.
    pub fn matches<S: FilterSubject + ?Sized>(&self, subject: &S) -> bool {
        self.plan.matches(subject)
    }

    /// The filter text as given to [`ResourceFilter::parse`].
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed conditions, in input order. Its `Display` is a canonical
    /// spelling of the filter.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl FromStr for ResourceFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceFilter::parse(s)
    }
}

impl fmt::Display for ResourceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Serialized as its text, so configuration can hold a `ResourceFilter`
/// directly and a bad filter is refused when the configuration is read.
impl serde::Serialize for ResourceFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A hand-built resource.
    #[derive(Debug, Clone)]
    pub(crate) struct Subject {
        pub(crate) core: [String; 6],
        pub(crate) metadata: BTreeMap<String, String>,
    }

    impl Subject {
        pub(crate) fn new(
            site: &str,
            class: &str,
            subclass: &str,
            kind: &str,
            id: &str,
            metadata: &[(&str, &str)],
        ) -> Self {
            Subject {
                core: [
                    site,
                    class,
                    subclass,
                    kind,
                    id,
                    &format!("{id}.example.com"),
                ]
                .map(str::to_string),
                metadata: metadata
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }
        }
    }

    impl FilterSubject for Subject {
        fn core_field(&self, field: CoreField) -> &str {
            let index = CoreField::ALL
                .iter()
                .position(|f| *f == field)
                .unwrap_or_default();
            &self.core[index]
        }

        fn metadata(&self, key: &str) -> Option<&str> {
            self.metadata.get(key).map(String::as_str)
        }
    }

    /// A small fleet: ids are what tests compare.
    fn fleet() -> Vec<Subject> {
        vec![
            Subject::new(
                "dc1",
                "network",
                "switch",
                "cisco",
                "ios1",
                &[("os_name", "Cisco IOS Software"), ("os_version", "15.2")],
            ),
            Subject::new(
                "dc2",
                "network",
                "switch",
                "cisco",
                "nxos1",
                &[("os_name", "Cisco NX-OS"), ("os_version", "7.0")],
            ),
            Subject::new(
                "dc1",
                "network",
                "firewall",
                "juniper",
                "srx1",
                &[("model", "SRX1400"), ("os_version", "12.1")],
            ),
            Subject::new(
                "dc3",
                "network",
                "router",
                "juniper",
                "mx1",
                &[("model", "mx960"), ("os_version", "4.2")],
            ),
            Subject::new(
                "dc2",
                "network",
                "switch",
                "arista",
                "ar1",
                &[("os_version", "4.20.1F")],
            ),
            Subject::new("dc3", "network", "msr", "arista", "msr1", &[]),
            Subject::new("dc1", "network", "par", "arista", "par1", &[]),
            Subject::new(
                "dc1",
                "system",
                "host",
                "linux",
                "host1",
                &[("os_version", "4.19")],
            ),
        ]
    }

    fn select(filter: &str) -> Vec<String> {
        let filter = ResourceFilter::parse(filter).expect(filter);
        fleet()
            .iter()
            .filter(|s| filter.matches(*s))
            .map(|s| s.core[4].clone())
            .collect()
    }

    #[test]
    fn spec_examples_select_the_right_resources() {
        assert_eq!(
            select(r#"resource_class = "network""#),
            ["ios1", "nxos1", "srx1", "mx1", "ar1", "msr1", "par1"]
        );
        assert_eq!(
            select(r#"resource_class = "network" AND resource_type = "arista""#),
            ["ar1", "msr1", "par1"]
        );
        assert_eq!(
            select(r#"resource_class = "network" AND resource_subclass IN ("msr", "par", "pat")"#),
            ["msr1", "par1"]
        );
        assert_eq!(
            select(
                r#"resource_class = "network" AND resource_type = "cisco" AND resource_metadata.os_name LIKE "CISCO IOS%""#
            ),
            ["ios1"]
        );
        assert_eq!(
            select(
                r#"resource_class = "network" AND resource_type = "juniper" AND resource_metadata.model LIKE "SRX%""#
            ),
            ["srx1"]
        );
        assert_eq!(
            select(r#"resource_site NOT IN ("dc1", "dc2")"#),
            ["mx1", "msr1"]
        );
        // The first metadata condition is ANDed with the core part even after
        // an OR (spec §2.2): dc1 resources whose os_version starts with 4.
        assert_eq!(
            select(r#"resource_metadata.os_version LIKE "4%" OR resource_site = "dc1""#),
            ["host1"]
        );
    }

    #[test]
    fn metadata_alone() {
        assert_eq!(
            select(r#"resource_metadata.os_version LIKE "4%""#),
            ["mx1", "ar1", "host1"]
        );
        assert_eq!(
            select(r#"resource_metadata.model != "mx960""#),
            ["srx1"],
            "resources without `model` are not selected by !="
        );
        assert_eq!(
            select(r#"resource_metadata.model NOT LIKE "mx%""#),
            ["srx1"]
        );
        assert_eq!(
            select(r#"resource_metadata.model NOT IN ("mx960")"#),
            ["srx1"]
        );
        assert!(select(r#"resource_metadata.nothing NOT LIKE "%""#).is_empty());
    }

    #[test]
    fn later_metadata_or_is_a_union_over_all_resources() {
        // core AND m1, then UNION m2: m2 matches regardless of the core part.
        assert_eq!(
            select(
                r#"resource_type = "cisco" AND resource_metadata.os_name LIKE "%IOS%" OR resource_metadata.model LIKE "SRX%""#
            ),
            ["ios1", "srx1"]
        );
        // Even "AND core ... OR meta": the OR unites with every resource
        // matching the metadata condition, in any site.
        assert_eq!(
            select(
                r#"resource_site = "dc2" AND resource_metadata.os_version LIKE "4%" OR resource_metadata.os_version LIKE "15%""#
            ),
            ["ios1", "ar1"]
        );
    }

    #[test]
    fn later_metadata_and_is_an_intersection() {
        assert_eq!(
            select(
                r#"resource_class = "network" AND resource_metadata.os_version LIKE "%.%" AND resource_metadata.model LIKE "%""#
            ),
            ["srx1", "mx1"]
        );
        // The first metadata condition alone, then intersect.
        assert_eq!(
            select(
                r#"resource_metadata.os_version LIKE "4%" AND resource_metadata.model = "mx960""#
            ),
            ["mx1"]
        );
    }

    #[test]
    fn metadata_set_operations_apply_left_to_right() {
        // ((m1 OR m2) AND m3), not m1 OR (m2 AND m3).
        let filter = r#"resource_metadata.os_version = "4.2" OR resource_metadata.os_version = "12.1" AND resource_metadata.model LIKE "SRX%""#;
        assert_eq!(select(filter), ["srx1"]);
        // ((m1 AND m2) OR m3)
        let filter = r#"resource_metadata.os_version = "4.2" AND resource_metadata.model = "nope" OR resource_metadata.model LIKE "SRX%""#;
        assert_eq!(select(filter), ["srx1"]);
    }

    #[test]
    fn metadata_is_anded_with_the_whole_core_part() {
        // (dc3 OR arista) AND os_version LIKE "4%", not dc3 OR (arista AND ...).
        assert_eq!(
            select(
                r#"resource_site = "dc3" OR resource_type = "arista" AND resource_metadata.os_version LIKE "4%""#
            ),
            ["mx1", "ar1"]
        );
    }

    #[test]
    fn core_precedence_and_binds_tighter_than_or() {
        assert_eq!(
            select(
                r#"resource_site = "dc3" OR resource_site = "dc1" AND resource_type = "arista""#
            ),
            ["mx1", "msr1", "par1"]
        );
        assert_eq!(
            select(
                r#"resource_type = "arista" AND resource_site = "dc3" OR resource_site = "dc1" AND resource_class = "system""#
            ),
            ["msr1", "host1"]
        );
    }

    #[test]
    fn equality_is_case_sensitive_like_is_not() {
        assert!(select(r#"resource_type = "CISCO""#).is_empty());
        assert!(select(r#"resource_type IN ("CISCO")"#).is_empty());
        assert_eq!(select(r#"resource_type LIKE "CISCO""#), ["ios1", "nxos1"]);
        assert_eq!(select(r#"resource_id LIKE "_r1""#), ["ar1"]);
        assert_eq!(
            select(r#"resource_id LIKE "%1" AND resource_id LIKE "m%""#),
            ["mx1", "msr1"]
        );
    }

    #[test]
    fn endpoint_and_eq_ne_operators() {
        assert_eq!(
            select(r#"resource_endpoint eq "srx1.example.com""#),
            ["srx1"]
        );
        assert_eq!(
            select(
                r#"resource_class = "network" AND resource_site NE "dc1" AND resource_type != "cisco""#
            ),
            ["mx1", "ar1", "msr1"]
        );
    }

    #[test]
    fn filters_from_conformance_plugin_configs() {
        assert_eq!(
            select(
                r#"resource_class = "network" AND resource_type = "cisco" AND resource_metadata.os_name LIKE "CISCO NX-OS%""#
            ),
            ["nxos1"]
        );
        assert_eq!(
            select(r#"resource_class = "network" AND resource_type = "juniper""#),
            ["srx1", "mx1"]
        );
        assert!(select(
            r#"resource_class =  "network" AND resource_subclass = "load-balancer" AND resource_type = "test""#
        )
        .is_empty());
    }

    #[test]
    fn text_is_kept_verbatim() {
        let text = r#"  resource_site eq "dc1"  "#;
        let filter: ResourceFilter = text.parse().expect("parses");
        assert_eq!(filter.as_str(), text);
        assert_eq!(filter.to_string(), text);
        assert_eq!(filter.expr().to_string(), r#"resource_site = "dc1""#);
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let filter = ResourceFilter::parse(r#"resource_site = "dc1""#).expect("parses");
        let json = serde_json::to_string(&filter).expect("serializes");
        assert_eq!(json, r#""resource_site = \"dc1\"""#);
        let back: ResourceFilter = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, filter);
        let err = serde_json::from_str::<ResourceFilter>(r#""resource_plugin = \"x\"""#)
            .expect_err("bad filter");
        assert!(err
            .to_string()
            .contains("resource_plugin is not filterable"));
    }

    #[test]
    fn error_display_quotes_the_input() {
        let err = ResourceFilter::parse(r#"resource_class = "network" resource_type = "arista""#)
            .expect_err("trailing");
        assert_eq!(
            err.to_string(),
            "resource filter: at column 28: expected \"AND\" or \"OR\", found \"resource_type\"\n  \
             | resource_class = \"network\" resource_type = \"arista\"\n  \
             |                            ^"
        );
    }
}
