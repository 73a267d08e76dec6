//! When a subtree walk goes on and when it stops, apart from the network.

use super::{Oid, SnmpValue, Varbind};

/// Rows a walk may return before we call it runaway; a 48-port switch's whole
/// MIB-2 is a few thousand rows, a big router's ifXTable some ten thousands.
pub const DEFAULT_WALK_LIMIT: usize = 100_000;

/// Bytes (OIDs and values, as held in memory) all the walks of one client may return
/// together: one poll of one device. A 48-port switch's interface walks are ≈200 KB; an
/// agent answering endlessly with large strings stops here instead of filling memory.
pub const DEFAULT_WALK_BYTES: usize = 32 << 20;

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

/// Which bound a walk ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitExceeded {
    Rows,
    /// The client's byte budget (see [`DEFAULT_WALK_BYTES`]).
    Bytes,
}

/// The memory a varbind takes, near enough: its OID's components and its value's bytes.
pub fn varbind_bytes(v: &Varbind) -> usize {
    let value = match &v.value {
        SnmpValue::OctetString(b) | SnmpValue::Opaque(b) => b.len(),
        SnmpValue::ObjectIdentifier(o) => o.components().len() * 4,
        _ => 8,
    };
    v.oid.components().len() * 4 + value + 32
}

pub struct Walk {
    root: Oid,
    rows: Vec<Varbind>,
    limit: usize,
    /// The name the agent gave its endOfMibView, when that ended the walk.
    end_of_mib: Option<Oid>,
}

impl Walk {
    /// A walk of the subtree under `root` of at most `limit` rows. The bytes it may take
    /// are a budget its caller holds and hands to each step (see [`varbind_bytes`]): one
    /// client's walks share theirs.
    pub fn new(root: &Oid, limit: usize) -> Walk {
        Walk {
            root: root.clone(),
            rows: Vec::new(),
            limit,
            end_of_mib: None,
        }
    }

    /// The OID to continue after: the last row taken, or the root before any.
    pub fn cursor(&self) -> &Oid {
        self.rows.last().map_or(&self.root, |row| &row.oid)
    }

    /// Takes one GETBULK answer (its varbinds in order), each row's bytes taken from
    /// `budget`.
    pub fn accept(
        &mut self,
        batch: Vec<Varbind>,
        budget: &mut usize,
    ) -> Result<Step, LimitExceeded> {
        if batch.is_empty() {
            return Ok(Step::Done(DoneReason::NoData));
        }
        // Room for the whole batch at once (rows are large; growing by doubling copied
        // a 48-row column five times).
        self.reserve(batch.len());
        for varbind in batch {
            if let Step::Done(reason) = self.accept_one(varbind, budget)? {
                return Ok(Step::Done(reason));
            }
        }
        Ok(Step::Continue)
    }

    /// Room for `rows` more rows (never past the row limit).
    pub fn reserve(&mut self, rows: usize) {
        self.rows
            .reserve(rows.min(self.limit.saturating_sub(self.rows.len())));
    }

    /// Takes the next varbind of this walk's subtree: a row (its bytes taken from
    /// `budget`), or the end of the walk.
    pub fn accept_one(
        &mut self,
        varbind: Varbind,
        budget: &mut usize,
    ) -> Result<Step, LimitExceeded> {
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
        if varbind.oid <= *self.cursor() {
            return Ok(Step::Done(DoneReason::NotIncreasing {
                previous: self.cursor().clone(),
                returned: varbind.oid,
            }));
        }
        if self.rows.len() >= self.limit {
            return Err(LimitExceeded::Rows);
        }
        let size = varbind_bytes(&varbind);
        if size > *budget {
            return Err(LimitExceeded::Bytes);
        }
        *budget -= size;
        self.rows.push(varbind);
        Ok(Step::Continue)
    }

    /// The walk's subtree.
    pub fn root(&self) -> &Oid {
        &self.root
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

    /// A byte budget nothing reaches.
    fn unbounded() -> usize {
        usize::MAX
    }

    fn root() -> Oid {
        "1.3.6.1.2.1.2".parse().unwrap()
    }

    #[test]
    fn continues_inside_subtree_then_stops_when_leaving() {
        let mut walk = Walk::new(&root(), 100);
        let step = walk
            .accept(
                vec![vb("1.3.6.1.2.1.2.1.0", 1), vb("1.3.6.1.2.1.2.2.1.1.1", 1)],
                &mut unbounded(),
            )
            .unwrap();
        assert_eq!(step, Step::Continue);
        assert_eq!(walk.cursor().to_string(), "1.3.6.1.2.1.2.2.1.1.1");
        let step = walk
            .accept(
                vec![vb("1.3.6.1.2.1.2.2.1.1.2", 2), vb("1.3.6.1.2.1.3.1", 9)],
                &mut unbounded(),
            )
            .unwrap();
        assert_eq!(step, Step::Done(DoneReason::LeftSubtree));
        assert_eq!(walk.finish().0.len(), 3);
    }

    #[test]
    fn stops_at_end_of_mib_view() {
        let mut walk = Walk::new(&root(), 100);
        let step = walk
            .accept(
                vec![
                    vb("1.3.6.1.2.1.2.1.0", 1),
                    Varbind::new(
                        "1.3.6.1.2.1.2.1.0".parse().unwrap(),
                        SnmpValue::EndOfMibView,
                    ),
                ],
                &mut unbounded(),
            )
            .unwrap();
        assert_eq!(step, Step::Done(DoneReason::EndOfMibView));
        assert_eq!(walk.finish().0.len(), 1);
    }

    #[test]
    fn looping_agent_stops_with_rows_kept() {
        let mut walk = Walk::new(&root(), 100);
        walk.accept(vec![vb("1.3.6.1.2.1.2.2.1.1.5", 1)], &mut unbounded())
            .unwrap();
        let step = walk
            .accept(vec![vb("1.3.6.1.2.1.2.2.1.1.3", 1)], &mut unbounded())
            .unwrap();
        assert!(matches!(step, Step::Done(DoneReason::NotIncreasing { .. })));
        let step = Walk::new(&root(), 100)
            .accept(vec![vb("1.3.6.1.2.1.2", 1)], &mut unbounded())
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
        assert_eq!(
            walk.accept(batch, &mut unbounded()),
            Err(LimitExceeded::Rows)
        );
    }

    #[test]
    fn the_byte_budget_is_an_error_too() {
        let big = |i: u32| {
            Varbind::new(
                format!("1.3.6.1.2.1.2.2.1.2.{i}").parse().unwrap(),
                SnmpValue::OctetString(vec![b'x'; 1000]),
            )
        };
        let one = varbind_bytes(&big(1));
        assert!(one > 1000 && one < 1200, "{one}");
        let mut walk = Walk::new(&root(), 100);
        let mut budget = one * 2 + 10;
        assert_eq!(
            walk.accept(vec![big(1), big(2)], &mut budget),
            Ok(Step::Continue)
        );
        assert_eq!(budget, 10);
        assert_eq!(
            walk.accept(vec![big(3)], &mut budget),
            Err(LimitExceeded::Bytes)
        );
    }

    #[test]
    fn empty_answer_ends_walk() {
        let mut walk = Walk::new(&root(), 2);
        assert_eq!(
            walk.accept(vec![], &mut unbounded()),
            Ok(Step::Done(DoneReason::NoData))
        );
    }
}
