//! IF-MIB interface enrichment and polling (spec §7, §8).

pub mod enrichment;
mod iana;
pub mod polling;
pub mod stored;

use std::collections::BTreeMap;

use crate::snmp::{IndexText, Oid, SnmpClient, SnmpError, SnmpValue, Varbind};

pub use iana::if_type_name;

pub const IF_TABLE: &str = "1.3.6.1.2.1.2.2.1";
pub const IF_X_TABLE: &str = "1.3.6.1.2.1.31.1.1.1";
pub const DOT3_STATS_TABLE: &str = "1.3.6.1.2.1.10.7.2.1";
pub const NOT_SET: &str = "<not set>";

/// Rows of one walked column: interface index (the last OID component) -> value.
pub type Column = BTreeMap<String, SnmpValue>;

/// Bulk-walks `<table>.<column>` for each `(table, column)` (walked together) and keys
/// each value by the rest of its OID.
pub async fn walk_columns<const N: usize>(
    client: &mut SnmpClient,
    columns: [(&str, u32); N],
) -> Result<[Column; N], SnmpError> {
    let mut walked = walk_indexed_all(client, &columns, 0).await?.into_iter();
    Ok(std::array::from_fn(|_| {
        walked
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|(index, value)| (index.as_str().to_owned(), value))
            .collect()
    }))
}

/// Rows of one walked column in the order of their index text (as a [`Column`]'s keys),
/// each index held inline: what a poll reads every interval, without a string and a map
/// entry per value.
pub type IndexedColumn = Vec<(IndexText, SnmpValue)>;

/// The rows of every `(table, column)`, in that order, walked together (see
/// [`SnmpClient::walk_together`]): a GETBULK round trip serves every column instead of
/// one. Each column has room for `expected_rows` from the start.
pub async fn walk_indexed_all(
    client: &mut SnmpClient,
    columns: &[(&str, u32)],
    expected_rows: usize,
) -> Result<Vec<IndexedColumn>, SnmpError> {
    let roots = columns
        .iter()
        .map(|&(table, column)| column_oid(table, column))
        .collect::<Result<Vec<_>, _>>()?;
    let (repetitions, limit) = (client.max_repetitions(), client.walk_limit());
    match client
        .walk_together_sized(&roots, repetitions, limit, true, expected_rows)
        .await?
    {
        Some(walked) => Ok(roots
            .iter()
            .zip(walked)
            .map(|(root, rows)| indexed(root, rows))
            .collect()),
        None => {
            let mut out = Vec::with_capacity(roots.len());
            for root in &roots {
                let rows = client.bulk_walk(root).await?;
                out.push(indexed(root, rows));
            }
            Ok(out)
        }
    }
}

fn column_oid(table: &str, column: u32) -> Result<Oid, SnmpError> {
    format!("{table}.{column}")
        .parse()
        .map_err(|_| SnmpError::Protocol {
            target: String::new(),
            detail: format!("bad OID {table}.{column}"),
        })
}

/// A column's walked rows keyed by their index (the OID after `root`), in text order.
fn indexed(root: &Oid, rows: Vec<Varbind>) -> IndexedColumn {
    let mut out: IndexedColumn = rows
        .into_iter()
        .filter_map(|vb| Some((IndexText::of(vb.oid.suffix_after(root)?), vb.value)))
        .collect();
    // A walk's OIDs only increase, so no two rows share an index; the text order differs
    // from the walk's numeric order ("10" < "2").
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// ASCII text of an SNMP value, dropping bytes that are not ASCII (the original's
/// `decode('ascii', 'ignore')`).
pub fn ascii_text(v: &SnmpValue) -> String {
    match v.as_bytes() {
        Some(bytes) => ascii_only(bytes),
        None => v.to_display_string(),
    }
}

/// The ASCII bytes of `bytes`, the others dropped (`decode('ascii', 'ignore')`).
pub fn ascii_only(bytes: &[u8]) -> String {
    // One allocation of the right size (collecting chars grew the string step by step:
    // four or five allocations for a description, every interface, every poll).
    let mut out = String::with_capacity(bytes.len());
    out.extend(
        bytes
            .iter()
            .filter(|b| b.is_ascii())
            .map(|&b| char::from(b)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::ascii_only;

    /// `decode('ascii', 'ignore')`: the non-ASCII bytes dropped, the rest kept in order.
    #[test]
    fn ascii_only_drops_the_other_bytes() {
        assert_eq!(
            ascii_only(b"uplink caf\xc3\xa9 #1\x7f"),
            "uplink caf #1\x7f"
        );
        assert_eq!(ascii_only(b"\xff\xfe"), "");
        assert_eq!(ascii_only(b""), "");
        let long = "Ethernet1/1 to core-router-01.example.net port 7".as_bytes();
        let s = ascii_only(long);
        assert_eq!(s.as_bytes(), long);
        assert_eq!(
            s.capacity(),
            long.len(),
            "one allocation of the input's size"
        );
    }
}
