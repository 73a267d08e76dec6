//! Tokens of the resource filter DSL.
//!
//! The lexer is pulled one token at a time by the parser (rather than
//! tokenising the whole input up front) so that the *first* problem in the
//! input is the one reported: an unterminated string at the end of a filter
//! must not hide a missing `AND` earlier on.

use super::error::FilterError;

/// One lexical token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte offset of the first character of the token in the input.
    pub(crate) start: usize,
    /// Byte offset just past the token.
    pub(crate) end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A run of `[A-Za-z0-9_]`: a field name, a keyword (`AND`, `LIKE`, `eq`, ...)
    /// or a metadata key. Which one is the parser's business.
    Word(String),
    /// A double-quoted string, already unescaped.
    Str(String),
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// Any character the DSL has no use for (`'`, `<`, `&`, a lone `!`, ...).
    /// Kept as a token so the parser can say what it expected in its place.
    Other(char),
    /// End of input.
    End,
}

impl TokenKind {
    /// How the token is named in an error message's "found ..." part.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Word(w) => format!("\"{w}\""),
            TokenKind::Str(s) => format!("the string \"{}\"", super::ast::escape(s)),
            TokenKind::Eq => "\"=\"".to_string(),
            TokenKind::NotEq => "\"!=\"".to_string(),
            TokenKind::LParen => "\"(\"".to_string(),
            TokenKind::RParen => "\")\"".to_string(),
            TokenKind::Comma => "\",\"".to_string(),
            TokenKind::Dot => "\".\"".to_string(),
            TokenKind::Other(c) if c.is_control() => format!("the character {c:?}"),
            TokenKind::Other(c) => format!("\"{c}\""),
            TokenKind::End => "end of input".to_string(),
        }
    }
}

/// Characters a word (field name, keyword, metadata key) is made of.
/// ASCII only, as in the original grammar (pyparsing `alphanums + "_"`).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    peeked: Option<Token>,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            peeked: None,
        }
    }

    /// The next token, without consuming it.
    pub(crate) fn peek(&mut self) -> Result<&Token, FilterError> {
        if self.peeked.is_none() {
            let token = self.lex()?;
            self.peeked = Some(token);
        }
        match &self.peeked {
            Some(token) => Ok(token),
            // Unreachable: filled just above. Reported as an internal error
            // rather than a panic, as everything in this module must not panic.
            None => Err(FilterError::new(
                self.input,
                self.pos,
                "a token",
                "nothing (internal lexer error)",
            )),
        }
    }

    /// The next token, consumed.
    pub(crate) fn next_token(&mut self) -> Result<Token, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex(),
        }
    }

    fn lex(&mut self) -> Result<Token, FilterError> {
        let rest = &self.input[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let mut chars = trimmed.chars();
        let Some(c) = chars.next() else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let (kind, len) = match c {
            '=' => (TokenKind::Eq, 1),
            '!' if chars.next() == Some('=') => (TokenKind::NotEq, 2),
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            ',' => (TokenKind::Comma, 1),
            '.' => (TokenKind::Dot, 1),
            '"' => return self.lex_string(start),
            c if is_word_char(c) => {
                let len = trimmed
                    .find(|c: char| !is_word_char(c))
                    .unwrap_or(trimmed.len());
                (TokenKind::Word(trimmed[..len].to_string()), len)
            }
            other => (TokenKind::Other(other), other.len_utf8()),
        };
        self.pos += len;
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// Lexes a double-quoted string starting at `start` (the opening quote).
    ///
    /// Escapes follow the original (pyparsing `QuotedString(escChar='\\')`):
    /// `\t`, `\n`, `\r`, `\f` are the whitespace characters, and a backslash
    /// before any other character stands for that character (`\"` is a quote,
    /// `\\` a backslash, `\%` a plain `%`... which LIKE still treats as a
    /// wildcard, as SQLite LIKE has no escape character by default).
    /// Unlike pyparsing we decode strictly left to right, so `\\t` is a
    /// backslash followed by `t` rather than pyparsing's accidental tab.
    /// A raw line break inside a string is refused, as in the original
    /// (`QuotedString` is single-line by default).
    fn lex_string(&mut self, start: usize) -> Result<Token, FilterError> {
        let body_start = start + 1;
        let mut value = String::new();
        let mut chars = self.input[body_start..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = body_start + i + 1;
                    return Ok(Token {
                        kind: TokenKind::Str(value),
                        start,
                        end: self.pos,
                    });
                }
                '\\' => match chars.next() {
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, 'f')) => value.push('\u{c}'),
                    Some((j, '\n' | '\r')) => {
                        return Err(FilterError::new(
                            self.input,
                            body_start + j,
                            "a closing double quote (\") on the same line as the opening one",
                            "a line break",
                        )
                        .with_note("write \\n for a line break inside a value"))
                    }
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '\n' | '\r' => {
                    return Err(FilterError::new(
                        self.input,
                        body_start + i,
                        "a closing double quote (\") on the same line as the opening one",
                        "a line break",
                    )
                    .with_note("write \\n for a line break inside a value"))
                }
                other => value.push(other),
            }
        }
        Err(FilterError::new(
            self.input,
            start,
            "a closing double quote (\") for the string that starts here",
            "end of input",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().expect("lexes");
            if token.kind == TokenKind::End {
                return out;
            }
            out.push(token.kind);
        }
    }

    fn word(s: &str) -> TokenKind {
        TokenKind::Word(s.to_string())
    }

    fn string(s: &str) -> TokenKind {
        TokenKind::Str(s.to_string())
    }

    #[test]
    fn tokens_need_no_spaces_between_them() {
        assert_eq!(
            kinds("resource_site=\"dc1\"AND resource_id!=\"x\""),
            vec![
                word("resource_site"),
                TokenKind::Eq,
                string("dc1"),
                word("AND"),
                word("resource_id"),
                TokenKind::NotEq,
                string("x"),
            ]
        );
        assert_eq!(
            kinds(" resource_metadata . os_name IN(\"a\",\"b\") "),
            vec![
                word("resource_metadata"),
                TokenKind::Dot,
                word("os_name"),
                word("IN"),
                TokenKind::LParen,
                string("a"),
                TokenKind::Comma,
                string("b"),
                TokenKind::RParen,
            ]
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(kinds(r#""a\"b""#), vec![string("a\"b")]);
        assert_eq!(kinds(r#""a\\b""#), vec![string("a\\b")]);
        assert_eq!(kinds(r#""a\\tb""#), vec![string("a\\tb")]);
        assert_eq!(kinds(r#""\t\n\r\f""#), vec![string("\t\n\r\u{c}")]);
        assert_eq!(kinds(r#""\%\_\x""#), vec![string("%_x")]);
        assert_eq!(kinds(r#""""#), vec![string("")]);
        assert_eq!(kinds("\"é ü 日本\""), vec![string("é ü 日本")]);
    }

    #[test]
    fn stray_characters_become_other_tokens() {
        assert_eq!(
            kinds("'a' ! <"),
            vec![
                TokenKind::Other('\''),
                word("a"),
                TokenKind::Other('\''),
                TokenKind::Other('!'),
                TokenKind::Other('<'),
            ]
        );
        assert_eq!(kinds("!"), vec![TokenKind::Other('!')]);
    }

    #[test]
    fn unterminated_string_points_at_the_opening_quote() {
        let mut lexer = Lexer::new("x = \"abc");
        lexer.next_token().expect("word");
        lexer.next_token().expect("=");
        let err = lexer.next_token().expect_err("unterminated");
        assert_eq!(err.position, 4);
        assert_eq!(err.found, "end of input");
        assert!(err.expected.contains("closing double quote"));

        let err = Lexer::new(r#""abc\"#)
            .next_token()
            .expect_err("dangling escape");
        assert_eq!(err.position, 0);
    }

    #[test]
    fn raw_line_break_in_string_is_refused() {
        let err = Lexer::new("\"ab\ncd\"")
            .next_token()
            .expect_err("line break");
        assert_eq!(err.position, 3);
        assert_eq!(err.found, "a line break");
    }
}
