//! Walking several table columns at once.
//!
//! A poll reads some twenty columns of the same table rows. Walked one after another,
//! each column costs its own GETBULK round trips (two for a 48-port switch at 25
//! repetitions, so forty-odd a poll); asked together, one GETBULK carries a varbind per
//! column and the agent answers row by row (RFC 3416 4.2.3: repetition `i` holds the
//! successor of every column's cursor in request order), the way `snmptable` reads a
//! table. The rows each column gets are exactly those its own walk would have: every
//! column keeps its own cursor and stops on its own (end of its subtree, endOfMibView,
//! an exception, a non-increasing OID), and an answer cut short, as agents may cut one to
//! fit their message size, just leaves the columns it did not reach where they were.
//!
//! Anything unusual in the agent's answers to the combined requests (an error status,
//! a malformed answer, a walk bound run into) sends the caller back to walking the
//! columns one by one, with the byte budget as it was, so the outcome (rows or errors,
//! per column) is the one the separate walks give.
//!
//! A combined answer is larger than one column's (≈17 KB for 21 columns at 25
//! repetitions, where one column's is ≈1 KB), so it travels as several IP fragments; a
//! path that drops fragments loses it. When an agent that has already answered this
//! client leaves a combined request unanswered, its columns are walked one by one, now
//! and for the next hour ([`super::engine::ONE_BY_ONE_FOR`]): a poll pays the timeout
//! once, not every interval. When the combined request was the client's first, one
//! small GET (`sysUpTime.0`, a single attempt) tells a reachable agent from one that
//! is not; an agent that does not answer it fails as before.

use super::client::{SnmpClient, ERROR_TOO_BIG};
use super::walk::{Step, Walk};
use super::{Oid, SnmpError, SnmpVersion, Varbind};

impl SnmpClient {
    /// Every row under each of `roots` (at most `limit` rows each), with GETBULKs of
    /// `max_repetitions` asking for all the columns still going at once. `Ok(None)` when
    /// the columns are not walked together (v1, fewer than two, or an answer that was not
    /// a plain table: see the module's doc): the caller walks them one by one.
    /// `Err` only for what fails the device as a whole (no answer, the poll's deadline,
    /// refused credentials). `retry_too_big` halves the repetitions on `tooBig`, as
    /// [`SnmpClient::walk`] does.
    pub async fn walk_together(
        &mut self,
        roots: &[Oid],
        max_repetitions: u32,
        limit: usize,
        retry_too_big: bool,
    ) -> Result<Option<Vec<Vec<Varbind>>>, SnmpError> {
        self.walk_together_sized(roots, max_repetitions, limit, retry_too_big, 0)
            .await
    }

    /// [`Self::walk_together`] with room for `expected_rows` rows a column from the start
    /// (what the caller knows, e.g. the interfaces of the enrichment): a column of 48 rows
    /// walked 25 at a time otherwise grew once, its rows copied, every column every poll.
    pub async fn walk_together_sized(
        &mut self,
        roots: &[Oid],
        max_repetitions: u32,
        limit: usize,
        retry_too_big: bool,
        expected_rows: usize,
    ) -> Result<Option<Vec<Vec<Varbind>>>, SnmpError> {
        if roots.len() < 2
            || self.version == SnmpVersion::V1
            || self.engine().walks_one_by_one(self.peer())
        {
            return Ok(None);
        }
        let budget = self.walk_bytes_left;
        let answered_before = self.answered;
        match self
            .walk_columns_inner(
                roots,
                max_repetitions.max(1),
                limit,
                retry_too_big,
                expected_rows,
            )
            .await
        {
            Ok(columns) => Ok(Some(columns)),
            Err(e) => {
                self.walk_bytes_left = budget;
                if answer_was_not_a_table(&e) {
                    tracing::debug!(target = %self.target_label(), error = %e,
                        "walking the columns one by one");
                    Ok(None)
                } else if matches!(e, SnmpError::Timeout { .. })
                    && (answered_before || self.answers_one_small_request().await)
                {
                    if self.engine().remember_one_by_one(self.peer()) {
                        tracing::warn!(target = %self.target_label(), error = %e,
                            "the agent answers single requests but its answers to combined \
                             requests were lost (a path dropping IP fragments?): walking its \
                             columns one by one for an hour; a lower snmp max_repetitions \
                             makes combined answers smaller");
                    }
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether the agent answers a GET of `sysUpTime.0` in one attempt (any response,
    /// even an error status or noSuchObject, is an answer).
    async fn answers_one_small_request(&mut self) -> bool {
        let retries = std::mem::replace(&mut self.retries, 0);
        let uptime = Oid::from(super::notification::SYS_UPTIME_0.to_vec());
        let answered = match self.get(std::slice::from_ref(&uptime)).await {
            Ok(_) | Err(SnmpError::ErrorStatus { .. }) => true,
            Err(_) => false,
        };
        self.retries = retries;
        answered
    }

    async fn walk_columns_inner(
        &mut self,
        roots: &[Oid],
        max_repetitions: u32,
        limit: usize,
        retry_too_big: bool,
        expected_rows: usize,
    ) -> Result<Vec<Vec<Varbind>>, SnmpError> {
        let mut walks: Vec<Walk> = roots
            .iter()
            .map(|root| {
                let mut walk = Walk::new(root, limit);
                walk.reserve(expected_rows);
                walk
            })
            .collect();
        // The columns still going, by position in `walks`; the request asks for them in
        // this order, so varbind `k` of an answer belongs to `going[k % going.len()]`.
        let mut going: Vec<usize> = (0..walks.len()).collect();
        let mut cursors: Vec<Oid> = Vec::with_capacity(walks.len());
        let mut ended: Vec<bool> = Vec::with_capacity(walks.len());
        let mut repetitions = max_repetitions;
        while !going.is_empty() {
            cursors.clear();
            cursors.extend(going.iter().map(|&c| walks[c].cursor().clone()));
            let mut answer = match self.get_bulk(&cursors, 0, repetitions).await {
                Err(SnmpError::ErrorStatus { status, .. })
                    if retry_too_big && status == ERROR_TOO_BIG && repetitions > 1 =>
                {
                    repetitions /= 2;
                    continue;
                }
                other => other?,
            };
            if answer.is_empty() {
                // As for one column: no data, so every walk still going is over.
                break;
            }
            let width = going.len();
            // Room for the answer's rows, unless the caller said how many to expect: the
            // last answer of a column holds rows past its end (of the next column), and
            // room for those took a column of 48 from 48 rows to 96.
            if expected_rows == 0 {
                let rows = answer.len().div_ceil(width);
                for &c in &going {
                    walks[c].reserve(rows);
                }
            }
            ended.clear();
            ended.resize(width, false);
            for (k, varbind) in answer.drain(..).enumerate() {
                let slot = k % width;
                if ended[slot] {
                    continue;
                }
                let walk = &mut walks[going[slot]];
                let result = walk.accept_one(varbind, &mut self.walk_bytes_left);
                let over = match result {
                    Ok(Step::Continue) => false,
                    done => self.step_outcome(walk.root(), done)?,
                };
                ended[slot] = over;
            }
            crate::snmp::message::recycle_varbinds(answer);
            let mut slot = 0;
            going.retain(|_| {
                slot += 1;
                !ended[slot - 1]
            });
        }
        Ok(walks.into_iter().map(|walk| walk.finish().0).collect())
    }
}

/// Errors after which the columns are walked one by one instead of failing the device:
/// they are about the combined answer, not the agent's reachability or our credentials.
fn answer_was_not_a_table(e: &SnmpError) -> bool {
    matches!(
        e,
        SnmpError::ErrorStatus { .. }
            | SnmpError::Protocol { .. }
            | SnmpError::WalkLimit { .. }
            | SnmpError::WalkBytes { .. }
    )
}
