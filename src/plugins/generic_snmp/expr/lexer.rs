//! Tokens of the expression language: Python's, restricted to what DSL documents use.

use super::CompileError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Int(i128),
    Float(f64),
    Str(String),
    Name(String),
    /// `$index`: the index being evaluated.
    Index,
    /// Punctuation and operators: `( ) [ ] { } , : . + - * / // % ** == != < <= > >=`.
    Op(&'static str),
}

const OPS: [&str; 22] = [
    "**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", ".", "+", "-", "*",
    "/", "%", "<", ">",
];

pub fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, CompileError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'\'' || c == b'"' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(CompileError::at(start, "unterminated string literal"));
                };
                if b == quote {
                    i += 1;
                    break;
                }
                if b == b'\\' {
                    let Some(&e) = bytes.get(i + 1) else {
                        return Err(CompileError::at(i, "unterminated string literal"));
                    };
                    let ch = match e {
                        b'\\' => '\\',
                        b'\'' => '\'',
                        b'"' => '"',
                        b'n' => '\n',
                        b't' => '\t',
                        // As in Python, an unknown escape (`\d` in a pattern) keeps its
                        // backslash; the next character is read as usual.
                        _ => {
                            s.push('\\');
                            i += 1;
                            continue;
                        }
                    };
                    s.push(ch);
                    i += 2;
                    continue;
                }
                // Copy one UTF-8 character.
                let len = utf8_len(b);
                let end = (i + len).min(bytes.len());
                s.push_str(src.get(i..end).unwrap_or(""));
                i = end;
            }
            out.push((start, Token::Str(s)));
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let mut is_float = false;
            if i < bytes.len()
                && bytes[i] == b'.'
                && !bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'$')
            {
                is_float = true;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text = &src[start..i];
            let tok = if is_float {
                Token::Float(
                    text.parse()
                        .map_err(|_| CompileError::at(start, "bad float literal"))?,
                )
            } else {
                Token::Int(
                    text.parse()
                        .map_err(|_| CompileError::at(start, "integer literal too large"))?,
                )
            };
            out.push((start, tok));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, Token::Name(src[start..i].to_string())));
            continue;
        }
        if c == b'$' {
            if src[i..].starts_with("$index")
                && !bytes
                    .get(i + 6)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                out.push((start, Token::Index));
                i += 6;
                continue;
            }
            return Err(CompileError::at(i, "`$` is only allowed in `$index`"));
        }
        match OPS.iter().find(|op| src[i..].starts_with(**op)) {
            Some(op) => {
                out.push((start, Token::Op(op)));
                i += op.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(CompileError::at(i, format!("unexpected character `{ch}`")));
            }
        }
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_fixture_forms() {
        let t = tokenize("float(a.$index) / 100.0 * b.$index").unwrap();
        let kinds: Vec<Token> = t.into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            kinds,
            vec![
                Token::Name("float".into()),
                Token::Op("("),
                Token::Name("a".into()),
                Token::Op("."),
                Token::Index,
                Token::Op(")"),
                Token::Op("/"),
                Token::Float(100.0),
                Token::Op("*"),
                Token::Name("b".into()),
                Token::Op("."),
                Token::Index,
            ]
        );
        let refused = |src| tokenize(src).unwrap_err().to_string();
        assert_eq!(
            refused("'open"),
            "unterminated string literal (at offset 0)"
        );
        assert_eq!(
            refused("a $x"),
            "`$` is only allowed in `$index` (at offset 2)"
        );
        assert_eq!(refused("a ; b"), "unexpected character `;` (at offset 2)");
        assert_eq!(tokenize("1e3").unwrap()[0].1, Token::Float(1000.0));
        assert_eq!(
            tokenize("'it\\'s'").unwrap()[0].1,
            Token::Str("it's".into())
        );
    }
}
