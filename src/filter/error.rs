//! The one error a resource filter can have: it does not parse.

use std::fmt;

/// Lines longer than this (in characters) are quoted as a window around the
/// error position rather than whole, so a log line stays readable.
const QUOTE_WIDTH: usize = 100;

/// A resource filter that does not parse, with where and why.
///
/// `Display` renders a one-line summary, then (when the input is not empty)
/// the offending line with a caret under the position:
///
/// ```text
/// resource filter: at column 28: expected "AND" or "OR", found "resource_type"
///   | resource_class = "network" resource_type = "arista"
///   |                            ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset in the input where the problem is.
    pub position: usize,
    /// What the parser was looking for, e.g. `"AND" or "OR"`.
    pub expected: String,
    /// What it found instead, e.g. `"resource_type"` or `end of input`.
    pub found: String,
    /// A hint when the mistake is a known one (`resource_plugin is not
    /// filterable`, `parentheses are not supported`, ...).
    pub note: Option<String>,
    /// The whole filter text, to quote it.
    pub input: String,
}

impl FilterError {
    pub(crate) fn new(
        input: &str,
        position: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        FilterError {
            position: position.min(input.len()),
            expected: expected.into(),
            found: found.into(),
            note: None,
            input: input.to_string(),
        }
    }

    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// 1-based line and column (in characters) of [`FilterError::position`].
    pub fn line_column(&self) -> (usize, usize) {
        let before = self.input.get(..self.position).unwrap_or(&self.input);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The line holding the error, with a caret under the error column, as
    /// two lines of text; a window of it if the line is long.
    fn quote(&self) -> Option<(String, String)> {
        if self.input.trim().is_empty() {
            return None;
        }
        let position = self.position.min(self.input.len());
        let line_start = self.input[..position].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.input[position..]
            .find('\n')
            .map_or(self.input.len(), |i| position + i);
        // Control characters (tabs, CR) would misplace the caret: show them as spaces.
        let line: Vec<char> = self.input[line_start..line_end]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let column = self.input[line_start..position].chars().count();

        let (from, to) = if line.len() <= QUOTE_WIDTH {
            (0, line.len())
        } else {
            let from = column.saturating_sub(QUOTE_WIDTH / 2);
            let to = (from + QUOTE_WIDTH).min(line.len());
            (to.saturating_sub(QUOTE_WIDTH), to)
        };
        let mut shown = String::new();
        let mut caret_offset = column - from;
        if from > 0 {
            shown.push_str("...");
            caret_offset += 3;
        }
        shown.extend(&line[from..to]);
        if to < line.len() {
            shown.push_str("...");
        }
        let caret = format!("{}^", " ".repeat(caret_offset));
        Some((shown, caret))
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = self.line_column();
        if self.input.contains('\n') {
            write!(f, "resource filter: at line {line}, column {column}: ")?;
        } else {
            write!(f, "resource filter: at column {column}: ")?;
        }
        write!(f, "expected {}, found {}", self.expected, self.found)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        if let Some((shown, caret)) = self.quote() {
            write!(f, "\n  | {shown}\n  | {caret}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FilterError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_column_and_caret() {
        let input = r#"resource_class = "network" resource_type = "arista""#;
        let err = FilterError::new(input, 27, "\"AND\" or \"OR\"", "\"resource_type\"");
        assert_eq!(
            err.to_string(),
            "resource filter: at column 28: expected \"AND\" or \"OR\", found \"resource_type\"\n  \
             | resource_class = \"network\" resource_type = \"arista\"\n  \
             |                            ^"
        );
    }

    #[test]
    fn renders_note_and_skips_caret_for_empty_input() {
        let err = FilterError::new("", 0, "a field name", "end of input").with_note("empty");
        assert_eq!(
            err.to_string(),
            "resource filter: at column 1: expected a field name, found end of input (empty)"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let input = "resource_site = \"é\" x";
        let err = FilterError::new(input, input.len() - 1, "\"AND\" or \"OR\"", "\"x\"");
        assert_eq!(err.line_column(), (1, 21));
        assert!(err
            .to_string()
            .ends_with(&format!("\n  | {}^", " ".repeat(20))));
    }

    #[test]
    fn multi_line_input_names_the_line() {
        let input = "resource_site = \"a\"\nAND x";
        let err = FilterError::new(input, input.len() - 1, "a field name", "\"x\"");
        assert_eq!(err.line_column(), (2, 5));
        let text = err.to_string();
        assert!(text.starts_with("resource filter: at line 2, column 5: "));
        assert!(text.ends_with("\n  | AND x\n  |     ^"), "{text}");
    }

    #[test]
    fn long_lines_are_quoted_as_a_window() {
        let input = format!("{}x{}", "a".repeat(300), "b".repeat(300));
        let err = FilterError::new(&input, 300, "something", "\"x\"");
        let text = err.to_string();
        let mut lines = text.lines().skip(1);
        let quoted = lines.next().expect("quoted line");
        let caret = lines.next().expect("caret line");
        assert!(quoted.starts_with("  | ...") && quoted.ends_with("..."));
        let caret_at = caret.find('^').expect("caret");
        assert_eq!(quoted[caret_at..].chars().next(), Some('x'));
    }

    #[test]
    fn position_past_end_is_clamped() {
        let err = FilterError::new("abc", 99, "x", "y");
        assert_eq!(err.position, 3);
        assert_eq!(err.line_column(), (1, 4));
    }
}
