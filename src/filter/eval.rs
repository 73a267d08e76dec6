//! Evaluation of a parsed filter against one resource.
//!
//! The original compiled a filter to SQLite in two parts: the core-field
//! conditions became one `WHERE` clause (so `AND` binds tighter than `OR`),
//! and the metadata conditions became a chain of `INTERSECT` / `UNION`
//! sub-selects over a `resources x resource_metadata` join. [`Plan`] splits
//! the filter the same way once, at parse time, and evaluates it per
//! resource: intersection and union of matching sets are, resource by
//! resource, `&&` and `||`.

use super::ast::{Condition, Connective, Expr, Field};
use super::FilterSubject;

/// A filter regrouped for evaluation (see the module docs of [`super`] for
/// the rules and where they differ from the original SQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The core-field conditions by SQL precedence: an OR of AND-groups.
    /// Empty when the filter tests no core field.
    core: Vec<Vec<Condition>>,
    /// The first metadata condition, ANDed with the core part whatever
    /// connective precedes it.
    first_metadata: Option<Condition>,
    /// Later metadata conditions with the connective written just before
    /// each: `AND` intersects, `OR` unites, left to right.
    later_metadata: Vec<(Connective, Condition)>,
}

impl Plan {
    pub(crate) fn new(expr: &Expr) -> Plan {
        let mut plan = Plan {
            core: Vec::new(),
            first_metadata: None,
            later_metadata: Vec::new(),
        };
        for (connective, condition) in expr.conditions() {
            if condition.field.is_metadata() {
                if plan.first_metadata.is_none() {
                    plan.first_metadata = Some(condition.clone());
                } else {
                    // `connective` is always Some here: the first condition of
                    // the filter is either core or the first metadata one.
                    let connective = connective.unwrap_or(Connective::And);
                    plan.later_metadata.push((connective, condition.clone()));
                }
                continue;
            }
            // A core condition joins the previous AND-group when the keyword
            // written just before it is AND, even if a metadata condition
            // sits in between (the original emitted the keyword preceding
            // each core condition into the core SQL and dropped the rest).
            match (plan.core.last_mut(), connective) {
                (Some(group), Some(Connective::And)) => group.push(condition.clone()),
                _ => plan.core.push(vec![condition.clone()]),
            }
        }
        plan
    }

    pub(crate) fn matches<S: FilterSubject + ?Sized>(&self, subject: &S) -> bool {
        let core = (!self.core.is_empty()).then(|| {
            self.core
                .iter()
                .any(|group| group.iter().all(|c| test(c, subject)))
        });
        let mut result = match (core, &self.first_metadata) {
            (Some(core), None) => core,
            (Some(core), Some(first)) => core && test(first, subject),
            (None, Some(first)) => test(first, subject),
            // Unreachable: a filter has at least one condition.
            (None, None) => false,
        };
        for (connective, condition) in &self.later_metadata {
            result = match connective {
                Connective::And => result && test(condition, subject),
                Connective::Or => result || test(condition, subject),
            };
        }
        result
    }
}

fn test<S: FilterSubject + ?Sized>(condition: &Condition, subject: &S) -> bool {
    match &condition.field {
        Field::Core(field) => condition.test(Some(subject.core_field(*field))),
        Field::Metadata(key) => condition.test(subject.metadata(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    fn plan(input: &str) -> Plan {
        Plan::new(&parse(input).expect(input))
    }

    fn shape(plan: &Plan) -> (Vec<usize>, bool, Vec<Connective>) {
        (
            plan.core.iter().map(Vec::len).collect(),
            plan.first_metadata.is_some(),
            plan.later_metadata.iter().map(|(c, _)| *c).collect(),
        )
    }

    #[test]
    fn core_conditions_group_by_precedence() {
        let p = plan(
            r#"resource_site = "a" AND resource_id = "b" OR resource_id = "c" AND resource_type = "d" AND resource_class = "e""#,
        );
        assert_eq!(shape(&p), (vec![2, 3], false, vec![]));
    }

    #[test]
    fn metadata_conditions_are_set_aside_in_order() {
        use Connective::{And, Or};
        let p = plan(
            r#"resource_metadata.a = "1" OR resource_site = "s" AND resource_metadata.b = "2" OR resource_metadata.c = "3" AND resource_metadata.d = "4""#,
        );
        assert_eq!(shape(&p), (vec![1], true, vec![And, Or, And]));
    }

    #[test]
    fn connective_before_a_core_condition_is_the_one_written_before_it() {
        // core1 AND meta OR core2: the OR before core2 starts a new group.
        let p = plan(r#"resource_site = "a" AND resource_metadata.m = "x" OR resource_id = "b""#);
        assert_eq!(shape(&p), (vec![1, 1], true, vec![]));
        // core1 OR meta AND core2: the AND before core2 joins core1's group.
        let p = plan(r#"resource_site = "a" OR resource_metadata.m = "x" AND resource_id = "b""#);
        assert_eq!(shape(&p), (vec![2], true, vec![]));
    }
}
