//! Object identifiers as numbers, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// Components an [`Oid`] holds without a heap block: 14 cover the columns of the usual
/// tables with a one-part index (ifHCInOctets.N is 12); longer OIDs spill to the heap.
/// Every received varbind's name is one, so a walk of a 48-port switch's 21 interface
/// columns allocated a thousand of them per poll.
const INLINE: usize = 14;

/// An OID's components, inline up to [`INLINE`].
pub type Components = SmallVec<[u32; INLINE]>;

/// An SNMP object identifier, e.g. `1.3.6.1.2.1.1.1.0`.
///
/// Ordering is numeric, component by component (the order agents walk in), so
/// `1.3.6.1.2` < `1.3.6.1.10` < `1.3.6.2`, and a prefix sorts before its children.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(Components);

/// Why a text could not be read as an [`Oid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OID {input:?}: {reason} (expected dotted decimal like 1.3.6.1.2.1.1.1.0)")]
pub struct OidParseError {
    pub input: String,
    pub reason: &'static str,
}

impl Oid {
    pub fn new(components: Vec<u32>) -> Oid {
        Oid(Components::from_vec(components))
    }

    /// An OID of components decoded in place (see `ber::decode_oid_content`).
    pub fn from_components(components: Components) -> Oid {
        Oid(components)
    }

    pub fn from_slice(components: &[u32]) -> Oid {
        Oid(Components::from_slice(components))
    }

    pub fn components(&self) -> &[u32] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `prefix` is this OID or one of its ancestors.
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The components after `prefix` (the table index of a column OID), or `None`
    /// when `prefix` is not an ancestor-or-self of this OID.
    pub fn suffix_after(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    /// This OID with one more component, e.g. a column OID plus an interface index.
    pub fn child(&self, component: u32) -> Oid {
        let mut components = self.0.clone();
        components.push(component);
        Oid(components)
    }

    /// This OID followed by `suffix`.
    pub fn join(&self, suffix: &[u32]) -> Oid {
        let mut components = self.0.clone();
        components.extend_from_slice(suffix);
        Oid(components)
    }

    /// Net-snmp's numeric style (`-On`), with a leading dot: `.1.3.6.1`.
    pub fn to_dotted_leading(&self) -> String {
        format!(".{self}")
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for component in &self.0 {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            write!(f, "{component}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl FromStr for Oid {
    type Err = OidParseError;

    /// Accepts `1.3.6.1` and `.1.3.6.1`; every component must fit in 32 bits.
    fn from_str(input: &str) -> Result<Oid, OidParseError> {
        let error = |reason| OidParseError {
            input: input.to_string(),
            reason,
        };
        let body = input.trim();
        let body = body.strip_prefix('.').unwrap_or(body);
        if body.is_empty() {
            return Err(error("it is empty"));
        }
        let mut components = Components::new();
        for part in body.split('.') {
            if part.is_empty() {
                return Err(error("it has an empty component"));
            }
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error("a component is not a decimal number"));
            }
            let component = part
                .parse::<u32>()
                .map_err(|_| error("a component does not fit in 32 bits"))?;
            components.push(component);
        }
        Ok(Oid(components))
    }
}

impl From<Vec<u32>> for Oid {
    fn from(components: Vec<u32>) -> Oid {
        Oid::new(components)
    }
}

impl From<&[u32]> for Oid {
    fn from(components: &[u32]) -> Oid {
        Oid::from_slice(components)
    }
}

impl<const N: usize> From<[u32; N]> for Oid {
    fn from(components: [u32; N]) -> Oid {
        Oid::from_slice(&components)
    }
}

impl AsRef<[u32]> for Oid {
    fn as_ref(&self) -> &[u32] {
        &self.0
    }
}

/// Serialised as the dotted string, the way configuration files spell OIDs.
impl Serialize for Oid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Oid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Oid, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn oid(text: &str) -> Oid {
        text.parse().unwrap()
    }

    #[test]
    fn parses_with_and_without_leading_dot() {
        assert_eq!(oid(".1.3.6.1"), Oid::from([1, 3, 6, 1]));
        assert_eq!(oid("1.3.6.1"), Oid::from([1, 3, 6, 1]));
        assert_eq!(oid("0"), Oid::from([0]));
        assert_eq!(oid("1.3.4294967295").components()[2], u32::MAX);
    }

    #[test]
    fn rejects_malformed_text_with_reason() {
        for bad in [
            "",
            ".",
            "1..3",
            "1.3.",
            "1.a.3",
            "1.-3",
            "1.3.4294967296",
            " 1 .3",
        ] {
            let err = bad.parse::<Oid>().unwrap_err();
            assert!(err.to_string().contains("invalid OID"), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_without_and_with_leading_dot() {
        let o = oid("1.3.6.1.2.1.1.1.0");
        assert_eq!(o.to_string(), "1.3.6.1.2.1.1.1.0");
        assert_eq!(o.to_dotted_leading(), ".1.3.6.1.2.1.1.1.0");
        assert_eq!(format!("{o:?}"), "Oid(1.3.6.1.2.1.1.1.0)");
    }

    #[test]
    fn orders_numerically_not_textually() {
        let mut oids = [
            oid("1.3.6.1.10"),
            oid("1.3.6.2"),
            oid("1.3.6.1.2.1"),
            oid("1.3.6.1.2"),
            oid("1.3.6.1.9"),
        ];
        oids.sort();
        let texts: Vec<String> = oids.iter().map(Oid::to_string).collect();
        assert_eq!(
            texts,
            [
                "1.3.6.1.2",
                "1.3.6.1.2.1",
                "1.3.6.1.9",
                "1.3.6.1.10",
                "1.3.6.2"
            ]
        );
    }

    #[test]
    fn prefix_helpers() {
        let column = oid("1.3.6.1.2.1.2.2.1.10");
        let cell = column.join(&[7, 1]);
        assert!(cell.starts_with(&column));
        assert!(column.starts_with(&column));
        assert!(!column.starts_with(&cell));
        assert_eq!(cell.suffix_after(&column), Some(&[7u32, 1][..]));
        assert_eq!(column.suffix_after(&cell), None);
        assert_eq!(column.child(3), oid("1.3.6.1.2.1.2.2.1.10.3"));
    }

    #[test]
    fn serde_uses_dotted_text() {
        let o: Oid = serde_json::from_str("\".1.3.6\"").unwrap();
        assert_eq!(o, oid("1.3.6"));
        assert_eq!(serde_json::to_string(&o).unwrap(), "\"1.3.6\"");
        let err = serde_json::from_str::<Oid>("\"1.x\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "invalid OID \"1.x\": a component is not a decimal number (expected dotted \
                 decimal like 1.3.6.1.2.1.1.1.0)"
            ),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(components in proptest::collection::vec(any::<u32>(), 1..20)) {
            let o = Oid::new(components);
            prop_assert_eq!(o.to_string().parse::<Oid>().unwrap(), o.clone());
            prop_assert_eq!(o.to_dotted_leading().parse::<Oid>().unwrap(), o);
        }

        #[test]
        fn ord_matches_component_slices(a in proptest::collection::vec(0u32..5, 0..6),
                                        b in proptest::collection::vec(0u32..5, 0..6)) {
            prop_assert_eq!(Oid::from(a.as_slice()).cmp(&Oid::from(b.as_slice())), a.cmp(&b));
        }
    }
}

/// Components as dotted text, `[1, 2, 10]` -> `"1.2.10"`, in one allocation (a walk makes
/// one of these per varbind).
pub fn dotted(components: &[u32]) -> String {
    let mut out = String::with_capacity(components.len() * 4);
    push_dotted(components, |text| out.push_str(text));
    out
}

/// Hands `f` the dotted text of `components` piece by piece (numbers and dots).
fn push_dotted(components: &[u32], mut f: impl FnMut(&str)) {
    let mut digits = itoa::Buffer::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            f(".");
        }
        f(digits.format(*c));
    }
}

/// A table row's index as dotted text (`"3"`, `"1.2.10"`), held inline when it is short
/// (any one-part index is): what a poll keys its rows by, without a heap block per row.
/// Orders as the text does (`"10"` < `"2"`), like the `String` keys it stands for.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IndexText(SmallVec<[u8; 22]>);

impl IndexText {
    pub fn of(components: &[u32]) -> IndexText {
        let mut out = SmallVec::new();
        push_dotted(components, |text| out.extend_from_slice(text.as_bytes()));
        IndexText(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and dots are ever written (see `of`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for IndexText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod dotted_tests {
    use super::*;

    #[test]
    fn dotted_text_of_components() {
        assert_eq!(dotted(&[]), "");
        assert_eq!(dotted(&[7]), "7");
        assert_eq!(dotted(&[1, 2, 10, 4294967295]), "1.2.10.4294967295");
    }

    #[test]
    fn index_text_spells_and_orders_as_the_dotted_string() {
        let cases: [&[u32]; 7] = [
            &[],
            &[7],
            &[10],
            &[2],
            &[1, 2, 10],
            &[1, 10],
            &[4294967295; 3],
        ];
        for a in cases {
            assert_eq!(IndexText::of(a).as_str(), dotted(a));
            for b in cases {
                assert_eq!(
                    IndexText::of(a).cmp(&IndexText::of(b)),
                    dotted(a).cmp(&dotted(b)),
                    "{a:?} vs {b:?}"
                );
            }
        }
        // Longer than the inline room: spills, same text.
        let long = [4294967295u32; 5];
        assert_eq!(IndexText::of(&long).as_str(), dotted(&long));
        let column: Oid = "1.3.6.1.2.1.2.2.1.8".parse().unwrap();
        let cell: Oid = "1.3.6.1.2.1.2.2.1.8.12.3".parse().unwrap();
        // A table row's index as the plugins key it.
        let index = |oid: &Oid, prefix: &Oid| oid.suffix_after(prefix).map(IndexText::of);
        assert_eq!(
            index(&cell, &column).as_ref().map(IndexText::as_str),
            Some("12.3")
        );
        assert_eq!(index(&column, &cell), None);
    }
}
