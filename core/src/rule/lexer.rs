//! Rule text → tokens with byte spans. The lexer never fails: the first bad character, string
//! or number becomes an [`TokenKind::Error`] token (the last before [`TokenKind::Eof`]), so the
//! parser reports problems in text order.

use super::ast::Span;
use super::error::RuleError;
use super::name::{Keyword, is_ident_byte, quoted};
use crate::time::{Date, Timestamp};

/// Microseconds per unit of a duration literal.
const MICROS_PER_SECOND: u128 = 1_000_000;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A bare identifier that is not a keyword: a column or a function name.
    Ident(String),
    /// A column name in backticks (escapes undone).
    Quoted(String),
    Keyword(Keyword),
    /// A string in double quotes (escapes undone).
    Str(String),
    /// Digits without sign (the parser applies a leading `-`).
    Int(u64),
    /// A finite float without sign.
    Float(f64),
    /// A duration without sign, in microseconds.
    Duration(u128),
    Date(Date),
    DateTime(Timestamp),
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    LParen,
    RParen,
    Comma,
    /// The first lexical error; nothing follows but [`TokenKind::Eof`].
    Error(RuleError),
    Eof,
}

/// A token and its bytes in the rule text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Span,
}

/// All tokens of `text`, ending with [`TokenKind::Eof`] (after an error token, if any).
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let mut lexer = Lexer { text, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_space();
        let start = lexer.pos;
        if start == text.len() {
            tokens.push(Token {
                kind: TokenKind::Eof,
                span: Span::new(start, start),
            });
            return tokens;
        }
        match lexer.token() {
            Ok(kind) => tokens.push(Token {
                kind,
                span: Span::new(start, lexer.pos),
            }),
            Err(err) => {
                let span = err.span;
                tokens.push(Token {
                    kind: TokenKind::Error(err),
                    span,
                });
                tokens.push(Token {
                    kind: TokenKind::Eof,
                    span: Span::new(text.len(), text.len()),
                });
                return tokens;
            }
        }
    }
}

struct Lexer<'t> {
    text: &'t str,
    pos: usize,
}

impl Lexer<'_> {
    fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes().get(self.pos + offset).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek_at(0), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error<T>(
        &self,
        start: usize,
        end: usize,
        message: impl Into<String>,
    ) -> Result<T, RuleError> {
        Err(RuleError::new(Span::new(start, end), message))
    }

    /// The character at the current position (not whitespace, not the end).
    fn token(&mut self) -> Result<TokenKind, RuleError> {
        let start = self.pos;
        let b = self.bytes()[start];
        let two = |lexer: &mut Self, kind| {
            lexer.pos += 2;
            Ok(kind)
        };
        let one = |lexer: &mut Self, kind| {
            lexer.pos += 1;
            Ok(kind)
        };
        match (b, self.peek_at(1)) {
            (b'!', Some(b'=')) | (b'<', Some(b'>')) => two(self, TokenKind::Ne),
            (b'<', Some(b'=')) => two(self, TokenKind::Le),
            (b'>', Some(b'=')) => two(self, TokenKind::Ge),
            (b'=', Some(b'=')) => self.error(start, start + 2, "use \"=\" to compare, not \"==\""),
            (b'&', Some(b'&')) => self.error(start, start + 2, "use \"and\" instead of \"&&\""),
            (b'|', Some(b'|')) => self.error(start, start + 2, "use \"or\" instead of \"||\""),
            (b'=', _) => one(self, TokenKind::Eq),
            (b'<', _) => one(self, TokenKind::Lt),
            (b'>', _) => one(self, TokenKind::Gt),
            (b'+', _) => one(self, TokenKind::Plus),
            (b'-', _) => one(self, TokenKind::Minus),
            (b'(', _) => one(self, TokenKind::LParen),
            (b')', _) => one(self, TokenKind::RParen),
            (b',', _) => one(self, TokenKind::Comma),
            (b'"', _) => self.string().map(TokenKind::Str),
            (b'`', _) => {
                let name = self.quoted_name()?;
                if name.is_empty() {
                    return self.error(
                        start,
                        self.pos,
                        "a column name in backticks cannot be empty",
                    );
                }
                Ok(TokenKind::Quoted(name))
            }
            (b'\'', _) => self.error(
                start,
                start + 1,
                "text goes in double quotes, e.g. \"NL\" (and odd column names in backticks)",
            ),
            (b'0'..=b'9', _) => self.number(),
            _ if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => self.word(),
            _ => {
                let ch = self.text[start..].chars().next().unwrap_or('?');
                let end = start + ch.len_utf8();
                if b == b'!' {
                    return self.error(
                        start,
                        end,
                        "unexpected \"!\" — did you mean \"!=\" or \"not\"?",
                    );
                }
                self.error(
                    start,
                    end,
                    format!("unexpected character {}", describe_char(ch)),
                )
            }
        }
    }

    /// A bare word: identifier or keyword. Non-ASCII letters are an error with a hint.
    fn word(&mut self) -> Result<TokenKind, RuleError> {
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            // A non-ASCII character that is not a letter.
            let ch = rest.chars().next().unwrap_or('?');
            return self.error(
                start,
                start + ch.len_utf8(),
                format!("unexpected character {}", describe_char(ch)),
            );
        }
        let word = &rest[..len];
        self.pos = start + len;
        if !word.is_ascii() {
            return self.error(
                start,
                self.pos,
                format!("a column name with other than a-z, 0-9 and _ goes in backticks: `{word}`"),
            );
        }
        Ok(match Keyword::of(word) {
            Some(keyword) => TokenKind::Keyword(keyword),
            None => TokenKind::Ident(word.to_owned()),
        })
    }

    /// A double-quoted string; the position is at the opening quote.
    fn string(&mut self) -> Result<String, RuleError> {
        self.delimited(b'"', "unterminated string — add the closing \"")
    }

    /// A backticked column name; the position is at the opening backtick.
    fn quoted_name(&mut self) -> Result<String, RuleError> {
        self.delimited(b'`', "unterminated column name — add the closing `")
    }

    /// Text between `quote`s with backslash escapes `\"`, `` \` ``, `\\`, `\n`, `\t`, `\r`,
    /// `\u{…}`.
    fn delimited(&mut self, quote: u8, unterminated: &str) -> Result<String, RuleError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(stop) = rest.bytes().position(|b| b == quote || b == b'\\') else {
                return self.error(open, self.text.len(), unterminated);
            };
            out.push_str(&rest[..stop]);
            self.pos += stop;
            if self.bytes()[self.pos] == quote {
                self.pos += 1;
                return Ok(out);
            }
            let escape = self.pos;
            let Some(ch) = self.text[escape + 1..].chars().next() else {
                return self.error(open, self.text.len(), unterminated);
            };
            self.pos = escape + 1 + ch.len_utf8();
            match ch {
                '"' => out.push('"'),
                '`' => out.push('`'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => out.push(self.unicode_escape(escape)?),
                _ => {
                    return self.error(
                        escape,
                        self.pos,
                        format!(
                            "unknown escape \"\\{ch}\" — use \\\" \\\\ \\n \\t \\r or \\u{{…}}"
                        ),
                    );
                }
            }
        }
    }

    /// The `{hex}` of `\u{hex}`; `escape` is the position of the backslash.
    fn unicode_escape(&mut self, escape: usize) -> Result<char, RuleError> {
        let bad = |lexer: &Self, end: usize| {
            lexer.error(
                escape,
                end,
                "a \\u escape is \\u{…} with 1 to 6 hex digits of a unicode character",
            )
        };
        if self.peek_at(0) != Some(b'{') {
            return bad(self, self.pos);
        }
        let digits_start = self.pos + 1;
        let len = self.bytes()[digits_start..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let close = digits_start + len;
        if self.bytes().get(close) != Some(&b'}') || !(1..=6).contains(&len) {
            let end = if self.bytes().get(close) == Some(&b'}') {
                close + 1
            } else {
                close
            };
            return bad(self, end);
        }
        self.pos = close + 1;
        u32::from_str_radix(&self.text[digits_start..close], 16)
            .ok()
            .and_then(char::from_u32)
            .map_or_else(|| bad(self, self.pos), Ok)
    }

    /// A number, a duration, a date or a date and time; the position is at a digit.
    fn number(&mut self) -> Result<TokenKind, RuleError> {
        let start = self.pos;
        let digits = |lexer: &Self, from: usize| {
            lexer.bytes()[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let int_len = digits(self, start);
        if int_len == 4
            && self.peek_at(4) == Some(b'-')
            && self.peek_at(5).is_some_and(|b| b.is_ascii_digit())
        {
            return self.date(start);
        }
        self.pos = start + int_len;
        let mut float = false;
        if self.peek_at(0) == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            float = true;
            self.pos += 1;
            self.pos += digits(self, self.pos);
        }
        if matches!(self.peek_at(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some(b'+' | b'-')));
            if self.peek_at(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                float = true;
                self.pos += 1 + sign;
                self.pos += digits(self, self.pos);
            }
        }
        let number_end = self.pos;
        let suffix = self.bytes()[number_end..]
            .iter()
            .take_while(|&&b| is_ident_byte(b) || b == b'.')
            .count();
        self.pos = number_end + suffix;
        let text = &self.text[start..number_end];
        if suffix > 0 {
            let unit = &self.text[number_end..self.pos];
            let seconds: Option<u128> = match unit {
                "w" => Some(7 * 86_400),
                "d" => Some(86_400),
                "h" => Some(3_600),
                "m" => Some(60),
                "s" => Some(1),
                _ => None,
            };
            return match (float, seconds) {
                (false, Some(seconds)) => match text.parse::<u64>() {
                    Ok(n) if u128::from(n) * seconds * MICROS_PER_SECOND <= 1 << 63 => Ok(
                        TokenKind::Duration(u128::from(n) * seconds * MICROS_PER_SECOND),
                    ),
                    _ => self.error(start, self.pos, "duration too long"),
                },
                (true, Some(_)) => self.error(
                    start,
                    self.pos,
                    "a duration is a whole number and a unit (w, d, h, m or s), e.g. 36h",
                ),
                _ => self.error(
                    start,
                    self.pos,
                    format!(
                        "invalid number {} — durations take a unit w, d, h, m or s, e.g. 30d",
                        quoted(&self.text[start..self.pos])
                    ),
                ),
            };
        }
        if float {
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(TokenKind::Float(x)),
                _ => self.error(start, self.pos, "number too large"),
            }
        } else {
            match text.parse::<u64>() {
                Ok(n) => Ok(TokenKind::Int(n)),
                Err(_) => self.error(
                    start,
                    self.pos,
                    "whole number too large (at most 9223372036854775807)",
                ),
            }
        }
    }

    /// `YYYY-MM-DD` or an RFC 3339 date and time starting at `start`.
    fn date(&mut self, start: usize) -> Result<TokenKind, RuleError> {
        let bytes = self.bytes();
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'-') {
            end += 1;
        }
        let is_time = matches!(bytes.get(end), Some(b'T' | b't'))
            && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
        if is_time {
            end += 1;
            while end < bytes.len()
                && (bytes[end].is_ascii_digit() || matches!(bytes[end], b':' | b'.'))
            {
                end += 1;
            }
            match bytes.get(end) {
                Some(b'Z' | b'z') => end += 1,
                Some(b'+' | b'-') if bytes.get(end + 1).is_some_and(u8::is_ascii_digit) => {
                    end += 1;
                    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b':') {
                        end += 1;
                    }
                }
                _ => {}
            }
        }
        // Letters or more digits glued on: part of the (bad) token.
        while end < bytes.len() && (is_ident_byte(bytes[end]) || matches!(bytes[end], b':' | b'.'))
        {
            end += 1;
        }
        self.pos = end;
        let text = &self.text[start..end];
        if is_time {
            match Timestamp::parse(text.as_bytes()) {
                Ok(t) => Ok(TokenKind::DateTime(t)),
                Err(e) => self.error(
                    start,
                    end,
                    format!("invalid date and time {}: {}", quoted(text), e.detail()),
                ),
            }
        } else {
            match Date::parse(text.as_bytes()) {
                Ok(d) => Ok(TokenKind::Date(d)),
                Err(e) => self.error(
                    start,
                    end,
                    format!("invalid date {}: {}", quoted(text), e.detail()),
                ),
            }
        }
    }
}

/// A character for a message: `"%"`, or its code point when invisible.
fn describe_char(ch: char) -> String {
    if ch.is_control() || ch.is_whitespace() {
        format!("U+{:04X}", u32::from(ch))
    } else {
        format!("\"{ch}\"")
    }
}

#[cfg(test)]
mod tests;
