//! When a subtree walk goes on and when it stops, apart from the network.

use super::{Oid, SnmpValue, Varbind};

/// Rows a walk may return before we call it runaway; a 48-port switch's whole
/// MIB-2 is a few thousand rows, a big router's ifXTable some ten thousands.
pub const DEFAULT_WALK_LIMIT: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask for more, starting after [`Walk::cursor`].
    Continue,
    Done(DoneReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoneReason {
    /// A returned OID was outside the walked subtree.
    LeftSubtree,
    EndOfMibView,
    /// The agent answered with no varbinds or an exception value.
    NoData,
    /// The agent went backwards or repeated itself: a broken agent that would
    /// make us loop forever. We keep what we have.
    NotIncreasing {
        previous: Oid,
        returned: Oid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded;

pub struct Walk {
    root: Oid,
    cursor: Oid,
    rows: Vec<Varbind>,
    limit: usize,
    /// The name the agent gave its endOfMibView, when that ended the walk.
    end_of_mib: Option<Oid>,
}

impl Walk {
    pub fn new(root: &Oid, limit: usize) -> Walk {
        Walk {
            root: root.clone(),
            cursor: root.clone(),
            rows: Vec::new(),
            limit,
            end_of_mib: None,
        }
    }

    /// The OID to continue after.
    pub fn cursor(&self) -> &Oid {
        &self.cursor
    }

    /// Takes one GETBULK answer (its varbinds in order).
    pub fn accept(&mut self, batch: Vec<Varbind>) -> Result<Step, LimitExceeded> {
        if batch.is_empty() {
            return Ok(Step::Done(DoneReason::NoData));
        }
        for varbind in batch {
            match varbind.value {
                SnmpValue::EndOfMibView => {
                    self.end_of_mib = Some(varbind.oid);
                    return Ok(Step::Done(DoneReason::EndOfMibView));
                }
                SnmpValue::NoSuchObject | SnmpValue::NoSuchInstance => {
                    return Ok(Step::Done(DoneReason::NoData))
                }
                _ => {}
            }
            if !varbind.oid.starts_with(&self.root) || varbind.oid == self.root {
                return Ok(Step::Done(DoneReason::LeftSubtree));
            }
            if varbind.oid <= self.cursor {
                return Ok(Step::Done(DoneReason::NotIncreasing {
                    previous: self.cursor.clone(),
                    returned: varbind.oid,
                }));
            }
            if self.rows.len() >= self.limit {
                return Err(LimitExceeded);
            }
            self.cursor = varbind.oid.clone();
            self.rows.push(varbind);
        }
        Ok(Step::Continue)
    }

    /// The rows, and the endOfMibView's name if the walk ran off the MIB.
    pub fn finish(self) -> (Vec<Varbind>, Option<Oid>) {
        (self.rows, self.end_of_mib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(oid: &str, n: i64) -> Varbind {
        Varbind::new(oid.parse().unwrap(), SnmpValue::Integer(n))
    }

    fn root() -> Oid {
        "1.3.6.1.2.1.2".parse().unwrap()
    }

    #[test]
    fn continues_inside_subtree_then_stops_when_leaving() {
        let mut walk = Walk::new(&root(), 100);
        let step = walk
            .accept(vec![
                vb("1.3.6.1.2.1.2.1.0", 1),
                vb("1.3.6.1.2.1.2.2.1.1.1", 1),
            ])
            .unwrap();
        assert_eq!(step, Step::Continue);
        assert_eq!(walk.cursor().to_string(), "1.3.6.1.2.1.2.2.1.1.1");
        let step = walk
            .accept(vec![
                vb("1.3.6.1.2.1.2.2.1.1.2", 2),
                vb("1.3.6.1.2.1.3.1", 9),
            ])
            .unwrap();
        assert_eq!(step, Step::Done(DoneReason::LeftSubtree));
        assert_eq!(walk.finish().0.len(), 3);
    }

    #[test]
    fn stops_at_end_of_mib_view() {
        let mut walk = Walk::new(&root(), 100);
        let step = walk
            .accept(vec![
                vb("1.3.6.1.2.1.2.1.0", 1),
                Varbind::new(
                    "1.3.6.1.2.1.2.1.0".parse().unwrap(),
                    SnmpValue::EndOfMibView,
                ),
            ])
            .unwrap();
        assert_eq!(step, Step::Done(DoneReason::EndOfMibView));
        assert_eq!(walk.finish().0.len(), 1);
    }

    #[test]
    fn looping_agent_stops_with_rows_kept() {
        let mut walk = Walk::new(&root(), 100);
        walk.accept(vec![vb("1.3.6.1.2.1.2.2.1.1.5", 1)]).unwrap();
        let step = walk.accept(vec![vb("1.3.6.1.2.1.2.2.1.1.3", 1)]).unwrap();
        assert!(matches!(step, Step::Done(DoneReason::NotIncreasing { .. })));
        let step = Walk::new(&root(), 100)
            .accept(vec![vb("1.3.6.1.2.1.2", 1)])
            .unwrap();
        assert_eq!(step, Step::Done(DoneReason::LeftSubtree));
        assert_eq!(walk.finish().0.len(), 1);
    }

    #[test]
    fn limit_is_an_error() {
        let mut walk = Walk::new(&root(), 2);
        let batch = (1..=3)
            .map(|i| vb(&format!("1.3.6.1.2.1.2.2.1.1.{i}"), i))
            .collect();
        assert_eq!(walk.accept(batch), Err(LimitExceeded));
    }

    #[test]
    fn empty_answer_ends_walk() {
        let mut walk = Walk::new(&root(), 2);
        assert_eq!(walk.accept(vec![]), Ok(Step::Done(DoneReason::NoData)));
    }
}
