//! SQL `LIKE` patterns, with SQLite's semantics.
//!
//! The original evaluated filters in SQLite, whose default `LIKE` is:
//! `%` matches any run of characters (including none), `_` exactly one
//! character (a Unicode scalar, not a byte), every other character matches
//! itself, ASCII letters case-insensitively (`a` matches `A`, but `é` does not
//! match `É`). There is no escape character: a `%` or `_` in a pattern is
//! always a wildcard, even if written `\%` in the filter string (the string
//! escape is gone by the time the pattern is built).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// A character matched ASCII-case-insensitively.
    Literal(char),
    /// `_`
    One,
    /// `%` (runs of `%` are collapsed into one when compiling)
    Any,
}

/// A compiled `LIKE` pattern. Equality and display use the pattern text.
#[derive(Debug, Clone)]
pub struct LikePattern {
    source: String,
    pieces: Vec<Piece>,
}

impl LikePattern {
    pub fn new(source: &str) -> Self {
        let mut pieces: Vec<Piece> = Vec::with_capacity(source.len());
        for c in source.chars() {
            let piece = match c {
                '%' => Piece::Any,
                '_' => Piece::One,
                other => Piece::Literal(other),
            };
            if piece == Piece::Any && pieces.last() == Some(&Piece::Any) {
                continue;
            }
            pieces.push(piece);
        }
        LikePattern {
            source: source.to_string(),
            pieces,
        }
    }

    /// The pattern as written in the filter (after string unescaping).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// Greedy matching that backtracks only to the last `%` seen: with runs of
    /// `%` collapsed this is correct for LIKE and runs in O(len(text) x
    /// len(pattern)) at worst, with no recursion and no allocation, so a
    /// hostile pattern cannot blow the stack or the clock.
    pub fn matches(&self, text: &str) -> bool {
        let pieces = &self.pieces;
        let (mut p, mut t) = (0usize, 0usize);
        // (piece index just after the last `%`, text offset it is retried from)
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next = text[t..].chars().next();
            if let Some(&piece) = pieces.get(p) {
                match (piece, next) {
                    (Piece::Any, _) => {
                        p += 1;
                        backtrack = Some((p, t));
                        continue;
                    }
                    (Piece::One, Some(c)) => {
                        p += 1;
                        t += c.len_utf8();
                        continue;
                    }
                    (Piece::Literal(l), Some(c)) if l.eq_ignore_ascii_case(&c) => {
                        p += 1;
                        t += c.len_utf8();
                        continue;
                    }
                    _ => {}
                }
            } else if next.is_none() {
                return true;
            }
            // Mismatch: let the last `%` swallow one more character, if any.
            match backtrack {
                Some((after_any, from)) => match text[from..].chars().next() {
                    Some(c) => {
                        let from = from + c.len_utf8();
                        backtrack = Some((after_any, from));
                        p = after_any;
                        t = from;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for LikePattern {}

impl fmt::Display for LikePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn like(pattern: &str, text: &str) -> bool {
        LikePattern::new(pattern).matches(text)
    }

    #[test]
    fn percent_matches_any_run() {
        assert!(like("CISCO IOS%", "CISCO IOS"));
        assert!(like("CISCO IOS%", "Cisco IOS Software, C3560"));
        assert!(!like("CISCO IOS%", "Cisco NX-OS"));
        assert!(like("%", ""));
        assert!(like("%", "anything"));
        assert!(like("%%%", "x"));
        assert!(like("%os%", "junos"));
        assert!(like("a%b%c", "a--b--c"));
        assert!(like("a%b%c", "abc"));
        assert!(!like("a%b%c", "a--c--b"));
        assert!(like("%b", "abab"));
        assert!(!like("%b", "aba"));
    }

    #[test]
    fn underscore_matches_exactly_one_character() {
        assert!(like("SRX___", "SRX240"));
        assert!(!like("SRX___", "SRX24"));
        assert!(!like("SRX___", "SRX2400"));
        assert!(like("_", "é"), "one character, not one byte");
        assert!(!like("__", "é"));
        assert!(!like("_", ""));
        assert!(like("%_", "a"));
        assert!(!like("%_", ""));
    }

    #[test]
    fn ascii_case_insensitive_only() {
        assert!(like("srx%", "SRX1400"));
        assert!(like("JunOS", "junos"));
        assert!(!like("é", "É"), "SQLite folds ASCII only");
        assert!(like("é", "é"));
    }

    #[test]
    fn other_characters_are_literal() {
        assert!(like("4.1[2]*?", "4.1[2]*?"));
        assert!(!like("4.1", "4x1"));
        assert!(like(r"a\b", r"a\b"), "backslash is not an escape in LIKE");
        assert!(!like("", "a"));
        assert!(like("", ""));
    }

    #[test]
    fn hostile_pattern_finishes() {
        let text = "a".repeat(5_000);
        let pattern = format!("{}b", "%a".repeat(200));
        assert!(!like(&pattern, &text));
    }

    /// A plain recursive matcher over characters: slow, obviously right.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|i| reference(rest, &text[i..])),
            Some(('_', rest)) => !text.is_empty() && reference(rest, &text[1..]),
            Some((c, rest)) => match text.split_first() {
                Some((t, text_rest)) => c.eq_ignore_ascii_case(t) && reference(rest, text_rest),
                None => false,
            },
        }
    }

    proptest! {
        #[test]
        fn agrees_with_reference(pattern in "[abAB%_é]{0,8}", text in "[abAB%_éÉ]{0,10}") {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(like(&pattern, &text), reference(&p, &t));
        }

        #[test]
        fn a_text_matches_itself(text in "[^%_]{0,20}") {
            prop_assert!(like(&text, &text));
            prop_assert!(like(&text.to_ascii_uppercase(), &text));
        }
    }
}
