//! Rule text → tree ([`Expr`]), with byte spans; the grammar is in `docs/segment-rules.md`.
//!
//! ```text
//! rule      = or
//! or        = and ("or" and)*
//! and       = not ("and" not)*
//! not       = "not" not | predicate
//! predicate = additive [ cmp additive
//!                      | ["not"] "in" "(" additive ("," additive)* [","] ")"
//!                      | ["not"] "between" additive "and" additive
//!                      | "is" ["not"] "null"
//!                      | match additive ]
//! additive  = primary (("+" | "-") primary)*
//! primary   = literal | "-" number | column | "(" or ")"
//!           | "now" "(" ")" | "lower" "(" or ")" | "in_list" "(" string ")"
//! ```
//!
//! A chain `a and b and c …` (likewise `or`) becomes a balanced tree of `And` nodes — the
//! first half on the left (`a and b and c` is `(a and b) and c`) — so a long rule stays a
//! shallow tree; `and` and `or` are associative, so the meaning is the same.
//!
//! Limits: [`MAX_TEXT_BYTES`] of text, [`MAX_DEPTH`] levels of nesting (each `(`, `not`, and
//! `+`/`-` counts one), [`MAX_IN_ITEMS`] values in an `in` list.

use super::ast::{CmpOp, Expr, ExprKind, Literal, Sign, Span};
use super::check::{MAX_IN_ITEMS, did_you_mean};
use super::error::RuleError;
use super::lexer::{Token, TokenKind, lex};
use super::name::{FUNCTIONS, Keyword, quoted};

/// Longest rule text, in bytes (64 KiB).
pub const MAX_TEXT_BYTES: usize = 65_536;

/// Deepest nesting of parentheses, `not` and `+`/`-`.
pub const MAX_DEPTH: usize = 64;

/// Parses a rule. The tree is not type-checked: see [`super::check::check`].
pub fn parse(text: &str) -> Result<Expr, RuleError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(RuleError::new(
            Span::new(MAX_TEXT_BYTES, text.len()),
            format!(
                "the rule is too long: {} bytes, at most {MAX_TEXT_BYTES} (64 KiB)",
                text.len()
            ),
        ));
    }
    let mut parser = Parser {
        text,
        tokens: lex(text),
        pos: 0,
        depth: 0,
    };
    if parser.peek().kind == TokenKind::Eof {
        return Err(RuleError::new(
            Span::new(text.len(), text.len()),
            "the rule is empty — write a condition, e.g. age >= 18",
        ));
    }
    let expr = parser.or()?;
    let token = parser.peek();
    match token.kind {
        TokenKind::Eof => Ok(expr),
        TokenKind::RParen => {
            Err(parser.fail("unexpected \")\" — there is no \"(\" to close".to_owned()))
        }
        _ => Err(parser.fail(format!(
            "unexpected {} — join conditions with \"and\" or \"or\"",
            parser.describe(parser.pos)
        ))),
    }
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Which chain a balanced tree is built for.
#[derive(Clone, Copy)]
enum Chain {
    And,
    Or,
}

/// `items` (at least one) as a balanced tree: the first half (rounded up) on the left.
fn balanced(mut items: Vec<Expr>, chain: Chain) -> Expr {
    if items.len() == 1 {
        return items.pop().expect("one item");
    }
    let right = items.split_off(items.len().div_ceil(2));
    let left = balanced(items, chain);
    let right = balanced(right, chain);
    let span = left.span.join(right.span);
    let (left, right) = (Box::new(left), Box::new(right));
    let kind = match chain {
        Chain::And => ExprKind::And(left, right),
        Chain::Or => ExprKind::Or(left, right),
    };
    Expr::new(kind, span)
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn peek_kind(&self, offset: usize) -> &TokenKind {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + offset).min(last)].kind
    }

    fn bump(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn is_keyword(&self, keyword: Keyword) -> bool {
        self.peek().kind == TokenKind::Keyword(keyword)
    }

    /// An error at the current token: its lexical error when it is one, else `message`.
    fn fail(&self, message: String) -> RuleError {
        let token = self.peek();
        match &token.kind {
            TokenKind::Error(err) => err.clone(),
            _ => RuleError::new(token.span, message),
        }
    }

    /// The token at `index` for a message: its text in quotes, or "the end of the rule".
    fn describe(&self, index: usize) -> String {
        let token = &self.tokens[index];
        if token.kind == TokenKind::Eof {
            return "the end of the rule".to_owned();
        }
        let source = self.source(token.span);
        if source.starts_with('"') {
            // A string shows as written (shortened when long).
            return match source.char_indices().nth(40) {
                Some((cut, _)) => format!("{}…\"", &source[..cut]),
                None => source.to_owned(),
            };
        }
        quoted(source)
    }

    fn source(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// One more level of nesting, at `span`.
    fn enter(&mut self, span: Span) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RuleError::new(
                span,
                format!(
                    "the rule is nested too deeply — at most {MAX_DEPTH} levels of parentheses, \
                     \"not\" and \"+\"/\"-\""
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth -= levels;
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.and()?];
        while self.is_keyword(Keyword::Or) {
            self.bump();
            items.push(self.and()?);
        }
        Ok(balanced(items, Chain::Or))
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.not()?];
        while self.is_keyword(Keyword::And) {
            self.bump();
            items.push(self.not()?);
        }
        Ok(balanced(items, Chain::And))
    }

    fn not(&mut self) -> Result<Expr, RuleError> {
        if !self.is_keyword(Keyword::Not) {
            return self.predicate();
        }
        let not = self.bump();
        self.enter(not.span)?;
        let inner = self.not()?;
        self.leave(1);
        let span = not.span.join(inner.span);
        Ok(Expr::new(ExprKind::Not(Box::new(inner)), span))
    }

    fn predicate(&mut self) -> Result<Expr, RuleError> {
        let value = self.additive()?;
        let expr = match self.peek().kind.clone() {
            TokenKind::Eq
            | TokenKind::Ne
            | TokenKind::Lt
            | TokenKind::Le
            | TokenKind::Gt
            | TokenKind::Ge => {
                let op = match self.bump().kind {
                    TokenKind::Eq => CmpOp::Eq,
                    TokenKind::Ne => CmpOp::Ne,
                    TokenKind::Lt => CmpOp::Lt,
                    TokenKind::Le => CmpOp::Le,
                    TokenKind::Gt => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let right = self.additive()?;
                let span = value.span.join(right.span);
                Expr::new(
                    ExprKind::Compare {
                        op,
                        left: Box::new(value),
                        right: Box::new(right),
                    },
                    span,
                )
            }
            TokenKind::Keyword(Keyword::In) => {
                self.bump();
                self.in_list(value, false)?
            }
            TokenKind::Keyword(Keyword::Between) => {
                self.bump();
                self.between(value, false)?
            }
            TokenKind::Keyword(Keyword::Not) => match self.peek_kind(1) {
                TokenKind::Keyword(Keyword::In) => {
                    self.bump();
                    self.bump();
                    self.in_list(value, true)?
                }
                TokenKind::Keyword(Keyword::Between) => {
                    self.bump();
                    self.bump();
                    self.between(value, true)?
                }
                _ => {
                    return Err(self.fail(
                        "after a value, \"not\" must be followed by \"in\" or \"between\"; to \
                         negate a condition, put \"not\" before it, e.g. not (name contains \"x\")"
                            .to_owned(),
                    ));
                }
            },
            TokenKind::Keyword(Keyword::Is) => {
                self.bump();
                let negated = self.is_keyword(Keyword::Not);
                if negated {
                    self.bump();
                }
                if !self.is_keyword(Keyword::Null) {
                    let after = if negated { "is not" } else { "is" };
                    return Err(self.fail(format!("expected \"null\" after \"{after}\"")));
                }
                let null = self.bump();
                let span = value.span.join(null.span);
                Expr::new(
                    ExprKind::IsNull {
                        value: Box::new(value),
                        negated,
                    },
                    span,
                )
            }
            TokenKind::Keyword(Keyword::Match(op, ignore_case)) => {
                self.bump();
                let pattern = self.additive()?;
                let span = value.span.join(pattern.span);
                Expr::new(
                    ExprKind::Match {
                        op,
                        ignore_case,
                        value: Box::new(value),
                        pattern: Box::new(pattern),
                    },
                    span,
                )
            }
            _ => return Ok(value),
        };
        let chained = matches!(
            self.peek().kind,
            TokenKind::Eq
                | TokenKind::Ne
                | TokenKind::Lt
                | TokenKind::Le
                | TokenKind::Gt
                | TokenKind::Ge
                | TokenKind::Keyword(
                    Keyword::In | Keyword::Between | Keyword::Is | Keyword::Match(..)
                )
        );
        if chained {
            return Err(self.fail(format!(
                "a condition cannot be followed by {} — join conditions with \"and\" or \"or\"",
                self.describe(self.pos)
            )));
        }
        Ok(expr)
    }

    /// The `(…)` of `in`, after `in` / `not in`.
    fn in_list(&mut self, value: Expr, negated: bool) -> Result<Expr, RuleError> {
        if self.peek().kind != TokenKind::LParen {
            let after = if negated { "not in" } else { "in" };
            return Err(self.fail(format!(
                "expected \"(\" after \"{after}\", e.g. country {after} (\"NL\", \"BE\")"
            )));
        }
        let open = self.bump();
        self.enter(open.span)?;
        if self.peek().kind == TokenKind::RParen {
            let close = self.bump();
            return Err(RuleError::new(
                open.span.join(close.span),
                "an \"in\" list needs at least one value",
            ));
        }
        let mut items = Vec::new();
        let close = loop {
            let item = self.additive()?;
            if items.len() == MAX_IN_ITEMS {
                return Err(RuleError::new(
                    item.span,
                    "an \"in\" list holds at most 10,000 values — use in_list(\"…\") for more",
                ));
            }
            items.push(item);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.bump();
                    if self.peek().kind == TokenKind::RParen {
                        break self.bump();
                    }
                }
                TokenKind::RParen => break self.bump(),
                TokenKind::Eof => return Err(unclosed(open.span)),
                _ => {
                    return Err(self.fail(format!(
                        "expected \",\" or \")\" in the \"in\" list, found {}",
                        self.describe(self.pos)
                    )));
                }
            }
        };
        self.leave(1);
        let span = value.span.join(close.span);
        Ok(Expr::new(
            ExprKind::In {
                value: Box::new(value),
                items,
                negated,
            },
            span,
        ))
    }

    /// `low and high`, after `between` / `not between`.
    fn between(&mut self, value: Expr, negated: bool) -> Result<Expr, RuleError> {
        let low = self.additive()?;
        if !self.is_keyword(Keyword::And) {
            return Err(self.fail(format!(
                "expected \"and\" in \"between … and …\", found {}",
                self.describe(self.pos)
            )));
        }
        self.bump();
        let high = self.additive()?;
        let span = value.span.join(high.span);
        Ok(Expr::new(
            ExprKind::Between {
                value: Box::new(value),
                low: Box::new(low),
                high: Box::new(high),
                negated,
            },
            span,
        ))
    }

    fn additive(&mut self) -> Result<Expr, RuleError> {
        let mut base = self.primary()?;
        let mut levels = 0;
        loop {
            let sign = match self.peek().kind {
                TokenKind::Plus => Sign::Plus,
                TokenKind::Minus => Sign::Minus,
                _ => break,
            };
            let op = self.bump();
            levels += 1;
            self.enter(op.span)?;
            let by = self.primary()?;
            let span = base.span.join(by.span);
            base = Expr::new(
                ExprKind::Shift {
                    base: Box::new(base),
                    sign,
                    by: Box::new(by),
                },
                span,
            );
        }
        self.leave(levels);
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        let token = self.peek().clone();
        let literal = |lit: Literal| Ok(Expr::new(ExprKind::Literal(lit), token.span));
        match token.kind {
            TokenKind::LParen => {
                self.bump();
                self.enter(token.span)?;
                let inner = self.or()?;
                self.close(token.span)?;
                self.leave(1);
                Ok(inner)
            }
            TokenKind::Minus => {
                let sign = self.bump();
                let number = self.peek().clone();
                let span = sign.span.join(number.span);
                let lit = match number.kind {
                    TokenKind::Int(n) => {
                        Literal::Int(signed(-i128::from(n), span, "whole number")?)
                    }
                    TokenKind::Float(x) => Literal::Float(-x),
                    TokenKind::Duration(micros) => {
                        Literal::Duration(signed(-(micros as i128), span, "duration")?)
                    }
                    _ => {
                        return Err(self.fail(
                            "\"-\" here must be followed by a number or a duration, e.g. -5 or -30d"
                                .to_owned(),
                        ));
                    }
                };
                self.bump();
                Ok(Expr::new(ExprKind::Literal(lit), span))
            }
            TokenKind::Int(n) => {
                self.bump();
                literal(Literal::Int(signed(
                    i128::from(n),
                    token.span,
                    "whole number",
                )?))
            }
            TokenKind::Float(x) => {
                self.bump();
                literal(Literal::Float(x))
            }
            TokenKind::Duration(micros) => {
                self.bump();
                literal(Literal::Duration(signed(
                    micros as i128,
                    token.span,
                    "duration",
                )?))
            }
            TokenKind::Str(ref s) => {
                self.bump();
                literal(Literal::String(s.clone()))
            }
            TokenKind::Date(d) => {
                self.bump();
                literal(Literal::Date(d))
            }
            TokenKind::DateTime(t) => {
                self.bump();
                literal(Literal::DateTime(t))
            }
            TokenKind::Keyword(Keyword::True) => {
                self.bump();
                literal(Literal::Bool(true))
            }
            TokenKind::Keyword(Keyword::False) => {
                self.bump();
                literal(Literal::Bool(false))
            }
            TokenKind::Keyword(Keyword::Null) => {
                self.bump();
                literal(Literal::Null)
            }
            TokenKind::Ident(ref name) if *self.peek_kind(1) == TokenKind::LParen => {
                self.call(name)
            }
            TokenKind::Ident(name) | TokenKind::Quoted(name) => {
                self.bump();
                Ok(Expr::new(ExprKind::Column(name), token.span))
            }
            _ => Err(self.expected_value()),
        }
    }

    /// The error for a missing value at the current token.
    fn expected_value(&self) -> RuleError {
        let mut message = match self.pos.checked_sub(1) {
            Some(prev) => format!("expected a value after {}", self.describe(prev)),
            None => "expected a condition, e.g. age >= 18".to_owned(),
        };
        if let TokenKind::Keyword(keyword) = self.peek().kind {
            message.push_str(&format!(", found \"{}\"", keyword.text()));
            if !matches!(keyword, Keyword::And | Keyword::Or | Keyword::Not) {
                message.push_str(&format!(
                    " (a column with that name goes in backticks: `{}`)",
                    self.source(self.peek().span)
                ));
            }
        } else if self.peek().kind == TokenKind::RParen {
            message = format!("unexpected \")\" — {message}");
        }
        self.fail(message)
    }

    /// Expects `)` closing the `(` at `open`.
    fn close(&mut self, open: Span) -> Result<Token, RuleError> {
        match self.peek().kind {
            TokenKind::RParen => Ok(self.bump()),
            TokenKind::Eof => Err(unclosed(open)),
            _ => Err(self.fail(format!(
                "expected \")\" to close the \"(\", found {}",
                self.describe(self.pos)
            ))),
        }
    }

    /// `name(…)`: the current token is the name, the next `(`.
    fn call(&mut self, name: &str) -> Result<Expr, RuleError> {
        let name_token = self.bump();
        let open = self.bump();
        let lower = name.to_ascii_lowercase();
        let (kind, close) = match lower.as_str() {
            "now" => {
                if self.peek().kind != TokenKind::RParen {
                    return Err(self.fail("now() takes nothing between its parentheses".to_owned()));
                }
                (ExprKind::Now, self.bump())
            }
            "lower" => {
                self.enter(open.span)?;
                let inner = self.or()?;
                let close = self.close(open.span)?;
                self.leave(1);
                (ExprKind::Lower(Box::new(inner)), close)
            }
            "in_list" => {
                let TokenKind::Str(list) = self.peek().kind.clone() else {
                    return Err(self.fail(
                        "in_list() needs a list name in double quotes, e.g. in_list(\"suppressed\")"
                            .to_owned(),
                    ));
                };
                self.bump();
                (ExprKind::InList(list), self.close(open.span)?)
            }
            _ => {
                let message = match did_you_mean(name, FUNCTIONS, 1) {
                    Some(s) => format!("unknown function {} — did you mean {s}()?", quoted(name)),
                    None => format!(
                        "unknown function {} — the functions are now(), lower(…) and in_list(\"…\")",
                        quoted(name)
                    ),
                };
                return Err(RuleError::new(name_token.span, message));
            }
        };
        Ok(Expr::new(kind, name_token.span.join(close.span)))
    }
}

/// `n` as an i64, or an out-of-range error.
fn signed(n: i128, span: Span, what: &str) -> Result<i64, RuleError> {
    i64::try_from(n).map_err(|_| {
        let message = if what == "duration" {
            "duration too long".to_owned()
        } else {
            format!("{what} too large (at most {})", i64::MAX)
        };
        RuleError::new(span, message)
    })
}

/// The error for a `(` never closed.
fn unclosed(open: Span) -> RuleError {
    RuleError::new(open, "unclosed \"(\" — add a \")\"")
}

#[cfg(test)]
mod tests;
