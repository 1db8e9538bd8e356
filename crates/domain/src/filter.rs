//! The filter expression language over fact fields.
//!
//! Managers write filters such as
//! `channel == "chat" && first_response_seconds <= 900`. This module parses
//! them ([`parse`]), prints them in a canonical form (the [`Display`] impl of
//! [`Expr`]), type-checks them against a fact schema ([`Expr::check`]) and
//! evaluates them against one fact ([`Expr::eval`]).
//!
//! Grammar (whitespace is free, keywords are lowercase):
//!
//! ```text
//! expr     := or
//! or       := and ( "||" and )*
//! and      := unary ( "&&" unary )*
//! unary    := "!" unary | "(" expr ")" | compare
//! compare  := field op literal
//!           | field "in" "[" literal ("," literal)* "]"
//!           | field "not" "in" "[" literal ("," literal)* "]"
//!           | field                      (same as field == true)
//! op       := "==" | "!=" | "<" | "<=" | ">" | ">="
//! literal  := string | number | true | false | null
//! field    := [a-zA-Z_][a-zA-Z0-9_]*
//! ```
//!
//! Strings take double or single quotes with `\"`, `\'`, `\\`, `\n`, `\t`,
//! `\r` and `\/` escapes; numbers are `-?digits(.digits)?([eE][+-]?digits)?`.
//!
//! Evaluation uses two-valued logic: a comparison with a null field value is
//! false, except `== null` (true) and `!= null` (false), so
//! `!(x <= 5)` holds when `x` is null.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::{self, Display, Write as _};

use serde::{Deserialize, Serialize};

use crate::error::FieldViolation;
use crate::schema::{FieldDef, FieldType};

/// How deeply `!` and `(` may nest before parsing gives up.
const MAX_DEPTH: usize = 200;

/// The words that cannot be field names.
const KEYWORDS: [&str; 5] = ["in", "not", "true", "false", "null"];

/// A literal value on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// A quoted string.
    String(String),
    /// A number (always finite when parsed).
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `[a, b, …]`, only after `in` / `not in`.
    List(Vec<Literal>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in [ … ]`
    In,
    /// `not in [ … ]`
    NotIn,
}

impl CompareOp {
    /// The operator as written in a filter, e.g. `<=` or `not in`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::In => "in",
            CompareOp::NotIn => "not in",
        }
    }

    /// Whether this is one of `<`, `<=`, `>`, `>=`.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge
        )
    }
}

impl Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed filter expression.
///
/// The parser produces normalised trees: `And` and `Or` have at least two
/// children and never directly contain a node of their own kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of the children hold (n-ary, flattened).
    And(Vec<Expr>),
    /// Any of the children holds (n-ary, flattened).
    Or(Vec<Expr>),
    /// The child does not hold.
    Not(Box<Expr>),
    /// A comparison of one field with a literal.
    Compare {
        /// The fact field.
        field: String,
        /// The operator.
        op: CompareOp,
        /// The right-hand side; a [`Literal::List`] for `in` / `not in`.
        value: Literal,
    },
}

/// A syntax error in a filter or formula.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    /// The byte offset in the source where the problem was found.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// What a type check needs to know about one fact field.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec<'a> {
    /// The field's type.
    pub field_type: FieldType,
    /// The allowed values of an enum field (empty otherwise).
    pub values: &'a [&'a str],
}

impl<'a> From<&'a FieldDef> for FieldSpec<'a> {
    fn from(def: &'a FieldDef) -> Self {
        FieldSpec {
            field_type: def.field_type,
            values: def.values,
        }
    }
}

/// A fact's field value at evaluation time. Timestamps are given as
/// [`Value::Number`] (unix seconds) or [`Value::String`] (RFC 3339).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A string, enum value or RFC 3339 timestamp.
    String(String),
    /// A number, duration in seconds or unix timestamp.
    Number(f64),
    /// A bool.
    Bool(bool),
}

/// Parses a filter expression. An empty (or all-whitespace) source is an
/// error: "no filter" is the caller's business.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(src)?;
    let expr = parser.or(None)?;
    if parser.cur.tok != Tok::End {
        return Err(parser.unexpected("expected \"&&\", \"||\" or end of input"));
    }
    Ok(expr)
}

/// Joins expressions with `&&`: `None` for none, the expression itself for
/// one, else a flattened [`Expr::And`].
pub fn and_all(exprs: Vec<Expr>) -> Option<Expr> {
    let mut flat = Vec::with_capacity(exprs.len());
    for expr in exprs {
        match expr {
            Expr::And(children) => flat.extend(children),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => None,
        1 => flat.pop(),
        _ => Some(Expr::And(flat)),
    }
}

impl Expr {
    /// Every field the expression references.
    pub fn fields(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Expr::And(children) | Expr::Or(children) => {
                for child in children {
                    child.collect_fields(out);
                }
            }
            Expr::Not(inner) => inner.collect_fields(out),
            Expr::Compare { field, .. } => {
                out.insert(field.as_str());
            }
        }
    }

    /// Type-checks the expression against a fact schema: `lookup` gives the
    /// spec of a field, `None` for an unknown one. Returns every problem
    /// found (empty when the filter is fine). Each violation has an empty
    /// `field` path — the caller nests it under the filter's path — and a
    /// description naming the filter field.
    pub fn check(&self, lookup: &dyn Fn(&str) -> Option<FieldSpec<'_>>) -> Vec<FieldViolation> {
        let mut out = Vec::new();
        self.check_into(lookup, &mut out);
        let mut seen = BTreeSet::new();
        out.retain(|v: &FieldViolation| seen.insert(v.description.clone()));
        out
    }

    fn check_into(
        &self,
        lookup: &dyn Fn(&str) -> Option<FieldSpec<'_>>,
        out: &mut Vec<FieldViolation>,
    ) {
        match self {
            Expr::And(children) | Expr::Or(children) => {
                for child in children {
                    child.check_into(lookup, out);
                }
            }
            Expr::Not(inner) => inner.check_into(lookup, out),
            Expr::Compare { field, op, value } => {
                let problems = match lookup(field) {
                    None => vec![format!("unknown field {}", quote(field))],
                    Some(spec) => check_compare(field, *op, value, spec),
                };
                out.extend(problems.into_iter().map(|d| FieldViolation::new("", d)));
            }
        }
    }

    /// Evaluates the expression against one fact; `get` gives a field's
    /// value ([`Value::Null`] when absent).
    ///
    /// Strings compare by equality and lexicographically, numbers
    /// numerically, bools by equality only; RFC 3339 strings compare as
    /// instants with each other and with numbers (unix seconds). Any other
    /// comparison of mismatched types is false, and so is every comparison
    /// of a null field value except `== null`. `in` holds when the value
    /// equals some element; `not in` when it is non-null and `!=` every
    /// element.
    pub fn eval(&self, get: &dyn Fn(&str) -> Value) -> bool {
        match self {
            Expr::And(children) => children.iter().all(|c| c.eval(get)),
            Expr::Or(children) => children.iter().any(|c| c.eval(get)),
            Expr::Not(inner) => !inner.eval(get),
            Expr::Compare { field, op, value } => eval_compare(&get(field), *op, value),
        }
    }

    /// Binding strength when printed: `||` 1, `&&` 2, `!` 3, comparison 4.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(children) | Expr::And(children) if children.len() == 1 => {
                children[0].precedence()
            }
            Expr::Or(_) => 1,
            Expr::And(_) => 2,
            Expr::Not(_) => 3,
            Expr::Compare { .. } => 4,
        }
    }

    /// Prints `self`, parenthesised when it binds more loosely than `min`.
    fn write_at(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            f.write_char('(')?;
            self.write_bare(f)?;
            f.write_char(')')
        } else {
            self.write_bare(f)
        }
    }

    fn write_bare(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(children) | Expr::Or(children) if children.len() == 1 => {
                children[0].write_bare(f)
            }
            // Not valid syntax: there is no empty conjunction.
            Expr::And(children) | Expr::Or(children) if children.is_empty() => f.write_str("()"),
            Expr::Or(children) => write_joined(f, children, " || ", 2),
            Expr::And(children) => write_joined(f, children, " && ", 3),
            Expr::Not(inner) => {
                f.write_char('!')?;
                // `!x <= 5` parses as `!(x <= 5)`, but people read it as
                // `(!x) <= 5`: only a bare boolean field or another `!` goes
                // without parentheses.
                let bare = matches!(
                    **inner,
                    Expr::Not(_)
                        | Expr::Compare {
                            op: CompareOp::Eq,
                            value: Literal::Bool(true),
                            ..
                        }
                );
                inner.write_at(f, if bare { 3 } else { 5 })
            }
            Expr::Compare { field, op, value } => match (op, value) {
                (CompareOp::Eq, Literal::Bool(true)) => f.write_str(field),
                _ => write!(f, "{field} {op} {value}"),
            },
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, children: &[Expr], sep: &str, min: u8) -> fmt::Result {
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        child.write_at(f, min)?;
    }
    Ok(())
}

/// The canonical form: `a == "x" && (b > 3 || !c)`, parentheses only where
/// needed, `f` for `f == true`.
impl Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_at(f, 0)
    }
}

/// Literals as written in a filter: strings in double quotes with escapes.
impl Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => f.write_str(&quote(s)),
            Literal::Number(x) => f.write_str(&format_number(*x)),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
            Literal::List(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
        }
    }
}

/// `s` in double quotes, with `"`, `\` and common control characters
/// escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number the way the lexer reads it back: integers without a decimal
/// point, others in Rust's shortest round-trip form; exponent notation for
/// very large or very small magnitudes.
pub(crate) fn format_number(x: f64) -> String {
    let abs = x.abs();
    if x.is_finite() && abs != 0.0 && !(1e-6..1e16).contains(&abs) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

// ---------------------------------------------------------------------------
// Type check

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "a string",
        FieldType::Enum => "an enum",
        FieldType::Number => "a number",
        FieldType::Bool => "a bool",
        FieldType::Timestamp => "a timestamp",
        FieldType::Duration => "a duration",
    }
}

fn check_compare(field: &str, op: CompareOp, value: &Literal, spec: FieldSpec<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let name = quote(field);
    let ty = spec.field_type;
    if op.is_ordering() && !(ty.is_ordered() || ty == FieldType::String) {
        out.push(format!(
            "\"{op}\" needs an ordered field (number, duration, timestamp or string), \
             but {name} is {} field",
            type_name(ty)
        ));
    }
    match (op, value) {
        (CompareOp::In | CompareOp::NotIn, Literal::List(items)) => {
            if items.is_empty() {
                out.push(format!("\"{op}\" on {name} needs at least one value"));
            }
            for item in items {
                match item {
                    Literal::Null if op == CompareOp::In => out.push(format!(
                        "null in an \"in\" list never matches; use {field} == null"
                    )),
                    Literal::Null => out.push(format!(
                        "null in a \"not in\" list has no effect; use {field} != null"
                    )),
                    Literal::List(_) => out.push(format!("the list for {name} contains a list")),
                    item => check_literal(&name, spec, item, &mut out),
                }
            }
        }
        (CompareOp::In | CompareOp::NotIn, _) => {
            out.push(format!(
                "\"{op}\" on {name} needs a list of values, e.g. [\"a\", \"b\"]"
            ));
        }
        (_, Literal::List(_)) => out.push(format!(
            "a list is only allowed after \"in\" or \"not in\", not after \"{op}\" on {name}"
        )),
        (CompareOp::Eq | CompareOp::Ne, Literal::Null) => {}
        (_, Literal::Null) => out.push(format!(
            "\"{op}\" cannot compare {name} with null; only == null and != null test for null"
        )),
        (_, scalar) => check_literal(&name, spec, scalar, &mut out),
    }
    out
}

/// Whether a scalar literal fits the field's type.
fn check_literal(name: &str, spec: FieldSpec<'_>, lit: &Literal, out: &mut Vec<String>) {
    let ty = spec.field_type;
    let problem = match (ty, lit) {
        (FieldType::Number | FieldType::Duration, Literal::Number(_))
        | (FieldType::Bool, Literal::Bool(_))
        | (FieldType::String, Literal::String(_))
        | (FieldType::Timestamp, Literal::Number(_)) => None,
        (FieldType::Number | FieldType::Duration, _) => Some(format!(
            "{name} is {} field; {lit} is not a number",
            type_name(ty)
        )),
        (FieldType::Bool, _) => Some(format!(
            "{name} is a bool field; {lit} is not true or false"
        )),
        (FieldType::String, _) => Some(format!(
            "{name} is a string field; {lit} is not a string (quote it: {})",
            quote(&lit.to_string())
        )),
        (FieldType::Enum, Literal::String(s)) if spec.values.contains(&s.as_str()) => None,
        (FieldType::Enum, _) => Some(format!(
            "{lit} is not a value of {name} (allowed: {})",
            spec.values.join(", ")
        )),
        (FieldType::Timestamp, Literal::String(s)) if parse_rfc3339(s).is_some() => None,
        (FieldType::Timestamp, Literal::String(_)) => Some(format!(
            "{name} is a timestamp field; {lit} is not an RFC 3339 timestamp \
             (e.g. \"2024-01-31T09:00:00Z\")"
        )),
        (FieldType::Timestamp, _) => Some(format!(
            "{name} is a timestamp field; {lit} is not a timestamp \
             (use an RFC 3339 string or unix seconds)"
        )),
    };
    out.extend(problem);
}

// ---------------------------------------------------------------------------
// Evaluation

fn eval_compare(v: &Value, op: CompareOp, lit: &Literal) -> bool {
    match (op, lit) {
        (CompareOp::Eq, Literal::Null) => return *v == Value::Null,
        (CompareOp::Ne, Literal::Null) => return *v != Value::Null,
        _ => {}
    }
    if *v == Value::Null {
        return false;
    }
    match op {
        CompareOp::In => match lit {
            Literal::List(items) => items.iter().any(|i| eval_compare(v, CompareOp::Eq, i)),
            scalar => eval_compare(v, CompareOp::Eq, scalar),
        },
        CompareOp::NotIn => match lit {
            Literal::List(items) => items.iter().all(|i| eval_compare(v, CompareOp::Ne, i)),
            scalar => eval_compare(v, CompareOp::Ne, scalar),
        },
        _ => {
            let Some((ordering, ordered)) = compare_values(v, lit) else {
                return false;
            };
            match op {
                CompareOp::Eq => ordering == Ordering::Equal,
                CompareOp::Ne => ordering != Ordering::Equal,
                CompareOp::Lt => ordered && ordering == Ordering::Less,
                CompareOp::Le => ordered && ordering != Ordering::Greater,
                CompareOp::Gt => ordered && ordering == Ordering::Greater,
                CompareOp::Ge => ordered && ordering != Ordering::Less,
                CompareOp::In | CompareOp::NotIn => false,
            }
        }
    }
}

/// How a non-null value compares with a scalar literal, and whether the
/// types are ordered at all; `None` when they cannot be compared.
fn compare_values(v: &Value, lit: &Literal) -> Option<(Ordering, bool)> {
    match (v, lit) {
        (Value::String(a), Literal::String(b)) => match (parse_rfc3339(a), parse_rfc3339(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(a.as_str().cmp(b.as_str())),
        }
        .map(|o| (o, true)),
        (Value::Number(a), Literal::Number(b)) => a.partial_cmp(b).map(|o| (o, true)),
        (Value::String(s), Literal::Number(n)) => {
            parse_rfc3339(s)?.partial_cmp(n).map(|o| (o, true))
        }
        (Value::Number(n), Literal::String(s)) => {
            n.partial_cmp(&parse_rfc3339(s)?).map(|o| (o, true))
        }
        (Value::Bool(a), Literal::Bool(b)) => Some((a.cmp(b), false)),
        _ => None,
    }
}

/// Unix seconds of an RFC 3339 timestamp such as `2024-01-31T09:00:00Z` or
/// `2024-01-31 09:00:00.5+02:00`; `None` when `s` does not have that shape.
pub(crate) fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let mut i = 19;
    let mut fraction = 0.0;
    if at(i, b".") {
        let start = i;
        i += 1;
        while at(i, b"0123456789") {
            i += 1;
        }
        if i == start + 1 {
            return None;
        }
        fraction = s.get(start..i)?.parse::<f64>().ok()?;
    }
    let offset = if at(i, b"Zz") && b.len() == i + 1 {
        0
    } else if at(i, b"+-") && at(i + 3, b":") && b.len() == i + 6 {
        let (oh, om) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
        if oh > 23 || om > 59 {
            return None;
        }
        let sign = if at(i, b"-") { -1 } else { 1 };
        sign * (oh * 3600 + om * 60)
    } else {
        return None;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // Seconds since the epoch stay far below 2^53 for four-digit years.
    #[allow(clippy::cast_precision_loss)]
    Some(seconds as f64 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    AndAnd,
    OrOr,
    Bang,
    Op(CompareOp),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offsets of the token in the source.
    start: usize,
    end: usize,
}

/// Skips whitespace from `pos`.
pub(crate) fn skip_whitespace(src: &str, pos: usize) -> usize {
    let rest = src.get(pos..).unwrap_or("");
    let trimmed = rest.trim_start();
    pos + (rest.len() - trimmed.len())
}

/// Scans an identifier `[a-zA-Z_][a-zA-Z0-9_]*` starting at `start` (which
/// the caller has checked starts one); returns its end.
pub(crate) fn scan_ident(src: &str, start: usize) -> usize {
    let b = src.as_bytes();
    let mut i = start;
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        i += 1;
    }
    i
}

/// Whether `c` may start an identifier.
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Scans a number `-?digits(.digits)?([eE][+-]?digits)?` at `start`;
/// returns its value and end. A number running into letters, digits, `_`
/// or `.` is invalid as a whole, e.g. `1.2.3` or `12abc`.
pub(crate) fn scan_number(src: &str, start: usize) -> Result<(f64, usize), ParseError> {
    let b = src.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let digits = |mut i: usize| {
        while digit(i) {
            i += 1;
        }
        i
    };
    let invalid = |i: usize| {
        let mut end = i;
        while b
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
        {
            end += 1;
        }
        let text = src.get(start..end).unwrap_or("");
        ParseError::new(start, format!("invalid number {}", quote(text)))
    };
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
        if !digit(i) {
            return Err(ParseError::new(start, "expected a digit after \"-\""));
        }
    }
    i = digits(i);
    if b.get(i) == Some(&b'.') {
        if !digit(i + 1) {
            return Err(invalid(i + 1));
        }
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if !digit(j) {
            return Err(invalid(j));
        }
        i = digits(j);
    }
    if b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
    {
        return Err(invalid(i));
    }
    let text = src.get(start..i).unwrap_or("");
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok((x, i)),
        _ => Err(ParseError::new(
            start,
            format!("number {} is out of range", quote(text)),
        )),
    }
}

/// Lexes one token at `pos` (after whitespace).
fn lex(src: &str, pos: usize) -> Result<Token, ParseError> {
    let start = skip_whitespace(src, pos);
    let rest = src.get(start..).unwrap_or("");
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return Ok(Token {
            tok: Tok::End,
            start,
            end: start,
        });
    };
    let next = chars.next();
    let token = |tok: Tok, len: usize| {
        Ok(Token {
            tok,
            start,
            end: start + len,
        })
    };
    match (c, next) {
        ('(', _) => token(Tok::LParen, 1),
        (')', _) => token(Tok::RParen, 1),
        ('[', _) => token(Tok::LBracket, 1),
        (']', _) => token(Tok::RBracket, 1),
        (',', _) => token(Tok::Comma, 1),
        ('&', Some('&')) => token(Tok::AndAnd, 2),
        ('|', Some('|')) => token(Tok::OrOr, 2),
        ('&', _) => Err(ParseError::new(
            start,
            "unexpected \"&\" (use \"&&\" for and)",
        )),
        ('|', _) => Err(ParseError::new(
            start,
            "unexpected \"|\" (use \"||\" for or)",
        )),
        ('!', Some('=')) => token(Tok::Op(CompareOp::Ne), 2),
        ('!', _) => token(Tok::Bang, 1),
        ('=', Some('=')) => token(Tok::Op(CompareOp::Eq), 2),
        ('=', _) => Err(ParseError::new(
            start,
            "unexpected \"=\" (use \"==\" to compare)",
        )),
        ('<', Some('=')) => token(Tok::Op(CompareOp::Le), 2),
        ('<', _) => token(Tok::Op(CompareOp::Lt), 1),
        ('>', Some('=')) => token(Tok::Op(CompareOp::Ge), 2),
        ('>', _) => token(Tok::Op(CompareOp::Gt), 1),
        ('"' | '\'', _) => lex_string(src, start, c),
        ('-' | '0'..='9', _) => {
            let (x, end) = scan_number(src, start)?;
            Ok(Token {
                tok: Tok::Num(x),
                start,
                end,
            })
        }
        (c, _) if is_ident_start(c) => {
            let end = scan_ident(src, start);
            let name = src.get(start..end).unwrap_or("").to_string();
            Ok(Token {
                tok: Tok::Ident(name),
                start,
                end,
            })
        }
        (c, _) => Err(ParseError::new(
            start,
            format!("unexpected character {c:?}"),
        )),
    }
}

/// Lexes a string quoted with `q` starting at `start`.
fn lex_string(src: &str, start: usize, q: char) -> Result<Token, ParseError> {
    let mut value = String::new();
    let mut chars = src.get(start..).unwrap_or("").char_indices().skip(1);
    let unterminated = || ParseError::new(start, "unterminated string");
    loop {
        let (i, c) = chars.next().ok_or_else(unterminated)?;
        if c == q {
            return Ok(Token {
                tok: Tok::Str(value),
                start,
                end: start + i + 1,
            });
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        let (_, e) = chars.next().ok_or_else(unterminated)?;
        value.push(match e {
            '"' | '\'' | '\\' | '/' => e,
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            other => {
                return Err(ParseError::new(
                    start + i,
                    format!("unknown escape \"\\{other}\" in string"),
                ));
            }
        });
    }
}

// ---------------------------------------------------------------------------
// Parser

struct Parser<'s> {
    src: &'s str,
    /// The lookahead token.
    cur: Token,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Result<Self, ParseError> {
        let cur = lex(src, 0)?;
        Ok(Parser { src, cur, depth: 0 })
    }

    fn advance(&mut self) -> Result<(), ParseError> {
        self.cur = lex(self.src, self.cur.end)?;
        Ok(())
    }

    /// "`expected`, found <the lookahead>" at the lookahead.
    fn unexpected(&self, expected: &str) -> ParseError {
        let found = match &self.cur.tok {
            Tok::End => "end of input".to_string(),
            Tok::Str(_) => format!("the string {}", self.text()),
            Tok::Num(_) => format!("the number {}", self.text()),
            _ => quote(self.text()),
        };
        ParseError::new(self.cur.start, format!("{expected}, found {found}"))
    }

    fn text(&self) -> &'s str {
        self.src.get(self.cur.start..self.cur.end).unwrap_or("")
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                self.cur.start,
                "expression is nested too deeply",
            ));
        }
        Ok(())
    }

    fn or(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and(after)?];
        while self.cur.tok == Tok::OrOr {
            self.advance()?;
            parts.push(self.and(Some("||"))?);
        }
        Ok(join(parts, false))
    }

    fn and(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        let mut parts = vec![self.unary(after)?];
        while self.cur.tok == Tok::AndAnd {
            self.advance()?;
            parts.push(self.unary(Some("&&"))?);
        }
        Ok(join(parts, true))
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Expr, ParseError> {
        match &self.cur.tok {
            Tok::Bang => {
                self.enter()?;
                self.advance()?;
                let inner = self.unary(Some("!"))?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.enter()?;
                let open = self.cur.start;
                self.advance()?;
                let inner = self.or(Some("("))?;
                if self.cur.tok != Tok::RParen {
                    return Err(self.unexpected(&format!(
                        "expected \")\" to close the \"(\" at position {open}"
                    )));
                }
                self.advance()?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Ident(name) if name == "not" => Err(ParseError::new(
                self.cur.start,
                "\"not\" is a keyword, not a field name; use \"!\" to negate",
            )),
            Tok::Ident(name) if KEYWORDS.contains(&name.as_str()) => Err(ParseError::new(
                self.cur.start,
                format!("expected a field name, found the keyword {}", quote(name)),
            )),
            Tok::Ident(name) => {
                let field = name.clone();
                self.advance()?;
                self.compare(field)
            }
            _ => {
                let mut expected = String::from("expected a field name, \"!\" or \"(\"");
                if let Some(after) = after {
                    expected.push_str(&format!(" after {}", quote(after)));
                }
                Err(self.unexpected(&expected))
            }
        }
    }

    /// The rest of a comparison after its field name.
    fn compare(&mut self, field: String) -> Result<Expr, ParseError> {
        let (op, value) = match &self.cur.tok {
            Tok::Op(op) => {
                let op = *op;
                self.advance()?;
                (op, self.literal(op.as_str())?)
            }
            Tok::Ident(word) if word == "in" => {
                self.advance()?;
                (CompareOp::In, self.list("in")?)
            }
            Tok::Ident(word) if word == "not" => {
                self.advance()?;
                if !matches!(&self.cur.tok, Tok::Ident(w) if w == "in") {
                    return Err(self.unexpected("expected \"in\" after \"not\""));
                }
                self.advance()?;
                (CompareOp::NotIn, self.list("not in")?)
            }
            _ => (CompareOp::Eq, Literal::Bool(true)),
        };
        Ok(Expr::Compare { field, op, value })
    }

    /// A scalar literal after `after`.
    fn literal(&mut self, after: &str) -> Result<Literal, ParseError> {
        let lit = match &self.cur.tok {
            Tok::Str(s) => Literal::String(s.clone()),
            Tok::Num(x) => Literal::Number(*x),
            Tok::Ident(w) if w == "true" => Literal::Bool(true),
            Tok::Ident(w) if w == "false" => Literal::Bool(false),
            Tok::Ident(w) if w == "null" => Literal::Null,
            Tok::LBracket => {
                return Err(self.unexpected(&format!(
                    "expected a value after {} (lists are only allowed after \"in\" and \"not in\")",
                    quote(after)
                )));
            }
            Tok::Ident(_) => {
                return Err(self.unexpected(&format!(
                    "expected a value after {} (strings need quotes)",
                    quote(after)
                )));
            }
            _ => {
                return Err(self.unexpected(&format!("expected a value after {}", quote(after))));
            }
        };
        self.advance()?;
        Ok(lit)
    }

    /// `[ literal (, literal)* ]` after `in` / `not in`.
    fn list(&mut self, after: &str) -> Result<Literal, ParseError> {
        if self.cur.tok != Tok::LBracket {
            return Err(self.unexpected(&format!("expected \"[\" after {}", quote(after))));
        }
        self.advance()?;
        let mut items = vec![self.literal("[")?];
        loop {
            match self.cur.tok {
                Tok::Comma => {
                    self.advance()?;
                    items.push(self.literal(",")?);
                }
                Tok::RBracket => {
                    self.advance()?;
                    return Ok(Literal::List(items));
                }
                _ => return Err(self.unexpected("expected \",\" or \"]\" in the list")),
            }
        }
    }
}

/// One part as is, several as an n-ary `And` (or `Or`), merging
/// children of the same kind.
fn join(mut parts: Vec<Expr>, is_and: bool) -> Expr {
    if parts.len() == 1
        && let Some(only) = parts.pop()
    {
        return only;
    }
    let mut flat = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Expr::And(children) if is_and => flat.extend(children),
            Expr::Or(children) if !is_and => flat.extend(children),
            other => flat.push(other),
        }
    }
    if is_and {
        Expr::And(flat)
    } else {
        Expr::Or(flat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FactType;
    use proptest::prelude::*;

    fn cmp(field: &str, op: CompareOp, value: Literal) -> Expr {
        Expr::Compare {
            field: field.to_string(),
            op,
            value,
        }
    }

    fn bare(field: &str) -> Expr {
        cmp(field, CompareOp::Eq, Literal::Bool(true))
    }

    fn s(v: &str) -> Literal {
        Literal::String(v.to_string())
    }

    fn n(v: f64) -> Literal {
        Literal::Number(v)
    }

    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    /// Parses, checks the canonical print, and checks print → parse is
    /// stable.
    fn round(src: &str, canonical: &str) -> Expr {
        let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(expr.to_string(), canonical, "printing {src}");
        assert_eq!(parse(canonical), Ok(expr.clone()), "reparsing {canonical}");
        expr
    }

    fn err(src: &str) -> ParseError {
        match parse(src) {
            Ok(e) => panic!("{src} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_the_example() {
        let src = r#"channel == "chat" && first_response_seconds <= 900"#;
        let expr = round(src, src);
        assert_eq!(
            expr,
            Expr::And(vec![
                cmp("channel", CompareOp::Eq, s("chat")),
                cmp("first_response_seconds", CompareOp::Le, n(900.0)),
            ])
        );
    }

    #[test]
    fn precedence_and_parentheses() {
        let e = round("a || b && c", "a || b && c");
        assert_eq!(
            e,
            Expr::Or(vec![bare("a"), Expr::And(vec![bare("b"), bare("c")])])
        );
        let e = round("(a || b) && c", "(a || b) && c");
        assert_eq!(
            e,
            Expr::And(vec![Expr::Or(vec![bare("a"), bare("b")]), bare("c")])
        );
        let e = round("!(a || b)", "!(a || b)");
        assert_eq!(e, not(Expr::Or(vec![bare("a"), bare("b")])));
        let e = round("!a && b", "!a && b");
        assert_eq!(e, Expr::And(vec![not(bare("a")), bare("b")]));
        round("((a)) && ((b || c))", "a && (b || c)");
        round("!!a", "!!a");
        round("!(!a)", "!!a");
        round("!(x == 5)", "!(x == 5)");
        round(
            r#"a == "x" && (b > 3 || !c)"#,
            r#"a == "x" && (b > 3 || !c)"#,
        );
    }

    #[test]
    fn and_or_are_flattened() {
        let e = round("a && (b && c) && d", "a && b && c && d");
        assert_eq!(
            e,
            Expr::And(vec![bare("a"), bare("b"), bare("c"), bare("d")])
        );
        let e = round("(a || b) || (c || d)", "a || b || c || d");
        assert_eq!(
            e,
            Expr::Or(vec![bare("a"), bare("b"), bare("c"), bare("d")])
        );
        // A parenthesised And inside an Or stays one child.
        let e = round("a || (b && c)", "a || b && c");
        assert_eq!(
            e,
            Expr::Or(vec![bare("a"), Expr::And(vec![bare("b"), bare("c")])])
        );
    }

    #[test]
    fn bare_fields_and_bools() {
        assert_eq!(round("resolved", "resolved"), bare("resolved"));
        assert_eq!(round("!resolved", "!resolved"), not(bare("resolved")));
        assert_eq!(round("resolved == true", "resolved"), bare("resolved"));
        assert_eq!(
            round("resolved == false", "resolved == false"),
            cmp("resolved", CompareOp::Eq, Literal::Bool(false))
        );
        assert_eq!(
            round("resolved != true", "resolved != true"),
            cmp("resolved", CompareOp::Ne, Literal::Bool(true))
        );
    }

    #[test]
    fn operators_and_literals() {
        round("x==1", "x == 1");
        round("x!=1", "x != 1");
        round("x<1", "x < 1");
        round("x<=1", "x <= 1");
        round("x>1", "x > 1");
        round("x>=1", "x >= 1");
        assert_eq!(
            round("x == -2.5", "x == -2.5"),
            cmp("x", CompareOp::Eq, n(-2.5))
        );
        assert_eq!(
            round("x == 900.0", "x == 900"),
            cmp("x", CompareOp::Eq, n(900.0))
        );
        assert_eq!(
            round("x == 1e3", "x == 1000"),
            cmp("x", CompareOp::Eq, n(1000.0))
        );
        assert_eq!(
            round("x == 15E-1", "x == 1.5"),
            cmp("x", CompareOp::Eq, n(1.5))
        );
        assert_eq!(
            round("x == 2e+2", "x == 200"),
            cmp("x", CompareOp::Eq, n(200.0))
        );
        round("x == 1e20", "x == 1e20");
        round("x == 0.0000001", "x == 1e-7");
        round("x == 0.1", "x == 0.1");
        assert_eq!(
            round("x == null", "x == null"),
            cmp("x", CompareOp::Eq, Literal::Null)
        );
        round("x != null", "x != null");
        round("_a1 == true", "_a1");
        round("  \t\n a \n== \"b\"  ", "a == \"b\"");
    }

    #[test]
    fn in_and_not_in_lists() {
        let e = round(
            r#"channel in ["chat","email"]"#,
            r#"channel in ["chat", "email"]"#,
        );
        assert_eq!(
            e,
            cmp(
                "channel",
                CompareOp::In,
                Literal::List(vec![s("chat"), s("email")])
            )
        );
        let e = round("x not in [1, 2]", "x not in [1, 2]");
        assert_eq!(
            e,
            cmp("x", CompareOp::NotIn, Literal::List(vec![n(1.0), n(2.0)]))
        );
        round("x in [ 'a' ]", r#"x in ["a"]"#);
        round(
            "x in [true, null, -1, \"s\"]",
            "x in [true, null, -1, \"s\"]",
        );
        round("!(x not in [1]) && y in [2]", "!(x not in [1]) && y in [2]");
    }

    #[test]
    fn string_escapes() {
        let e = round(
            r#"a == "say \"hi\" \\ there""#,
            r#"a == "say \"hi\" \\ there""#,
        );
        assert_eq!(e, cmp("a", CompareOp::Eq, s(r#"say "hi" \ there"#)));
        let e = round(r"a == 'it\'s'", r#"a == "it's""#);
        assert_eq!(e, cmp("a", CompareOp::Eq, s("it's")));
        let e = round(r#"a == 'say "x"'"#, r#"a == "say \"x\"""#);
        assert_eq!(e, cmp("a", CompareOp::Eq, s(r#"say "x""#)));
        let e = round(r#"a == "l1\nl2\t\/""#, r#"a == "l1\nl2\t/""#);
        assert_eq!(e, cmp("a", CompareOp::Eq, s("l1\nl2\t/")));
        round(r#"a == "ünï — 中文""#, r#"a == "ünï — 中文""#);
        round(r#"a == """#, r#"a == """#);
    }

    #[test]
    fn error_messages_and_positions() {
        let e = err("first_response_seconds <=");
        assert_eq!(
            e.to_string(),
            r#"at position 25: expected a value after "<=", found end of input"#
        );
        let cases: &[(&str, usize, &str)] = &[
            (
                "",
                0,
                "expected a field name, \"!\" or \"(\", found end of input",
            ),
            (
                "   ",
                3,
                "expected a field name, \"!\" or \"(\", found end of input",
            ),
            (r#"a == "abc"#, 5, "unterminated string"),
            (r#"a == 'abc\'"#, 5, "unterminated string"),
            (r#"a == "a\q""#, 7, "unknown escape \"\\q\" in string"),
            (
                "a &&",
                4,
                "expected a field name, \"!\" or \"(\" after \"&&\", found end of input",
            ),
            (
                "a || && b",
                5,
                "expected a field name, \"!\" or \"(\" after \"||\", found \"&&\"",
            ),
            (
                "!",
                1,
                "expected a field name, \"!\" or \"(\" after \"!\", found end of input",
            ),
            (
                "a == 1 b",
                7,
                "expected \"&&\", \"||\" or end of input, found \"b\"",
            ),
            (
                "a b",
                2,
                "expected \"&&\", \"||\" or end of input, found \"b\"",
            ),
            (
                "a == 1)",
                6,
                "expected \"&&\", \"||\" or end of input, found \")\"",
            ),
            (
                "(a == 1",
                7,
                "expected \")\" to close the \"(\" at position 0, found end of input",
            ),
            ("a == 1.2.3", 5, "invalid number \"1.2.3\""),
            ("a == 1.", 5, "invalid number \"1.\""),
            ("a == 1e", 5, "invalid number \"1e\""),
            ("a == 12abc", 5, "invalid number \"12abc\""),
            ("a == -x", 5, "expected a digit after \"-\""),
            ("a == 1e999", 5, "number \"1e999\" is out of range"),
            ("a # b", 2, "unexpected character '#'"),
            ("a == 1 & b", 7, "unexpected \"&\" (use \"&&\" for and)"),
            ("a | b", 2, "unexpected \"|\" (use \"||\" for or)"),
            ("a = 1", 2, "unexpected \"=\" (use \"==\" to compare)"),
            ("é", 0, "unexpected character 'é'"),
            (
                "a == chat",
                5,
                "expected a value after \"==\" (strings need quotes), found \"chat\"",
            ),
            (
                "a == [1]",
                5,
                "expected a value after \"==\" (lists are only allowed after \"in\" and \"not in\"), found \"[\"",
            ),
            (
                "a in 1",
                5,
                "expected \"[\" after \"in\", found the number 1",
            ),
            ("a in []", 6, "expected a value after \"[\", found \"]\""),
            ("a in [1,]", 8, "expected a value after \",\", found \"]\""),
            (
                "a in [1 2]",
                8,
                "expected \",\" or \"]\" in the list, found the number 2",
            ),
            (
                "a in [1",
                7,
                "expected \",\" or \"]\" in the list, found end of input",
            ),
            ("a not [1]", 6, "expected \"in\" after \"not\", found \"[\""),
            (
                "a == 'x' 'y'",
                9,
                "expected \"&&\", \"||\" or end of input, found the string 'y'",
            ),
            (
                "true",
                0,
                "expected a field name, found the keyword \"true\"",
            ),
            (
                "null == 1",
                0,
                "expected a field name, found the keyword \"null\"",
            ),
            (
                "not a",
                0,
                "\"not\" is a keyword, not a field name; use \"!\" to negate",
            ),
            (
                "a and b",
                2,
                "expected \"&&\", \"||\" or end of input, found \"and\"",
            ),
            (
                "a IN [1]",
                2,
                "expected \"&&\", \"||\" or end of input, found \"IN\"",
            ),
        ];
        for &(src, position, message) in cases {
            let e = err(src);
            assert_eq!(
                (e.position, e.message.as_str()),
                (position, message),
                "{src}"
            );
        }
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        assert_eq!(err(&deep).message, "expression is nested too deeply");
        let nots = format!("{}a", "!".repeat(1000));
        assert_eq!(err(&nots).message, "expression is nested too deeply");
        let ok = format!("{}a{}", "(".repeat(150), ")".repeat(150));
        assert_eq!(parse(&ok), Ok(bare("a")));
    }

    #[test]
    fn fields_lists_every_field_once() {
        let e = parse("b == 1 && (a || !c in [1]) && b > 2").unwrap();
        assert_eq!(
            e.fields().into_iter().collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
    }

    #[test]
    fn and_all_flattens() {
        assert_eq!(and_all(vec![]), None);
        assert_eq!(and_all(vec![bare("a")]), Some(bare("a")));
        assert_eq!(
            and_all(vec![Expr::And(vec![bare("a"), bare("b")]), bare("c")]),
            Some(Expr::And(vec![bare("a"), bare("b"), bare("c")]))
        );
        assert_eq!(
            and_all(vec![Expr::Or(vec![bare("a"), bare("b")]), bare("c")]),
            Some(Expr::And(vec![
                Expr::Or(vec![bare("a"), bare("b")]),
                bare("c")
            ]))
        );
    }

    fn eval_with(src: &str, fact: &[(&str, Value)]) -> bool {
        let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        expr.eval(&|name| {
            fact.iter()
                .find(|(k, _)| *k == name)
                .map_or(Value::Null, |(_, v)| v.clone())
        })
    }

    #[test]
    fn eval_numbers_strings_bools() {
        let fact = [
            ("channel", Value::String("chat".into())),
            ("frs", Value::Number(600.0)),
            ("resolved", Value::Bool(true)),
            ("complaint", Value::Bool(false)),
        ];
        let t = |src: &str| eval_with(src, &fact);
        assert!(t(r#"channel == "chat" && frs <= 900"#));
        assert!(!t(r#"channel == "chat" && frs <= 500"#));
        assert!(t(r#"channel == "email" || frs < 601"#));
        for (src, want) in [
            ("frs == 600", true),
            ("frs != 600", false),
            ("frs < 600", false),
            ("frs <= 600", true),
            ("frs > 600", false),
            ("frs >= 600", true),
            ("frs > 599.5", true),
            ("frs == 6e2", true),
            (r#"channel < "d""#, true),
            (r#"channel > "chas""#, true),
            (r#"channel >= "chat""#, true),
            (r#"channel != "email""#, true),
            ("resolved", true),
            ("!resolved", false),
            ("complaint", false),
            ("complaint == false", true),
            ("!complaint", true),
            ("resolved != false", true),
            // bools are not ordered
            ("resolved > false", false),
            ("resolved <= true", false),
            // mismatched types
            (r#"frs == "600""#, false),
            (r#"frs != "600""#, false),
            ("channel == 1", false),
            ("channel != 1", false),
            ("resolved == 1", false),
            ("frs == true", false),
            // lists
            (r#"channel in ["email", "chat"]"#, true),
            (r#"channel in ["email"]"#, false),
            (r#"channel not in ["email"]"#, true),
            (r#"channel not in ["email", "chat"]"#, false),
            ("frs in [1, 600]", true),
            ("frs not in [1, 2]", true),
            (r#"frs not in ["a"]"#, false),
            ("frs in [null]", false),
            ("frs not in [null]", true),
        ] {
            assert_eq!(t(src), want, "{src}");
        }
    }

    #[test]
    fn eval_null_is_two_valued() {
        let fact = [("x", Value::Null)];
        for (src, want) in [
            ("x == null", true),
            ("x != null", false),
            ("x == 5", false),
            ("x != 5", false),
            ("x <= 5", false),
            ("!(x <= 5)", true),
            ("x > 5", false),
            (r#"x == "a""#, false),
            ("x", false),
            ("!x", true),
            ("x in [1, 2]", false),
            ("x in [null]", false),
            ("x not in [1, 2]", false),
            ("!(x in [1])", true),
            ("missing == null", true),
            ("x == null && missing == null", true),
        ] {
            assert_eq!(eval_with(src, &fact), want, "{src}");
        }
        let fact = [("x", Value::Number(3.0))];
        assert!(!eval_with("x == null", &fact));
        assert!(eval_with("x != null", &fact));
    }

    #[test]
    fn eval_timestamps() {
        let fact = [
            ("s", Value::String("2024-01-31T09:00:00Z".into())),
            ("n", Value::Number(1_706_691_600.0)), // 2024-01-31T09:00:00Z
        ];
        for (src, want) in [
            (r#"s == "2024-01-31T10:00:00+01:00""#, true),
            (r#"s < "2024-01-31T09:00:00.5Z""#, true),
            (r#"s > "2024-01-31T08:00:00-00:30""#, true),
            ("s == 1706691600", true),
            ("s < 1706691601", true),
            (r#"n == "2024-01-31T09:00:00Z""#, true),
            (r#"n >= "2024-01-31 09:00:00z""#, true),
            (r#"n > "2024-02-01T00:00:00Z""#, false),
            (r#"n == "yesterday""#, false),
        ] {
            assert_eq!(eval_with(src, &fact), want, "{src}");
        }
    }

    #[test]
    fn rfc3339_shape() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00+01:00"), Some(82_800.0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.25Z"), Some(-0.75));
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
        for bad in [
            "",
            "2024-01-31",
            "2024-01-31T09:00:00",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-32T00:00:00Z",
            "2024-01-31T24:00:00Z",
            "2024-01-31T09:60:00Z",
            "2024-01-31T09:00:00.Z",
            "2024-01-31T09:00:00+0100",
            "2024-01-31T09:00:00+25:00",
            "2024-01-31T09:00:00Zx",
            "2024/01/31T09:00:00Z",
            "2024-1-31T09:00:00Z",
            "+024-01-31T09:00:00Z",
            "２024-01-31T09:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn check_ticket(src: &str) -> Vec<String> {
        let schema = FactType::Ticket.schema();
        let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        expr.check(&|name| schema.field(name).map(FieldSpec::from))
            .into_iter()
            .map(|v| {
                assert_eq!(v.field, "");
                v.description
            })
            .collect()
    }

    #[test]
    fn check_accepts_valid_filters() {
        for src in [
            r#"channel == "chat" && first_response_seconds <= 900"#,
            r#"channel in ["chat", "email"] && status != "open""#,
            "resolved && !is_complaint",
            "reopen_count > 0 || handle_seconds >= 1.5",
            r#"created_at >= "2024-01-01T00:00:00Z" && created_at < 1706691600"#,
            r#"category < "m""#,
            "first_response_at == null || first_resolved_at != null",
            "channel == null",
            "resolved == null",
            r#"agent_id not in ["a1", "a2"]"#,
            "reopen_count in [1, 2, 3]",
        ] {
            assert_eq!(check_ticket(src), Vec::<String>::new(), "{src}");
        }
    }

    #[test]
    fn check_reports_every_problem() {
        let cases: &[(&str, &[&str])] = &[
            (r#"chanel == "chat""#, &[r#"unknown field "chanel""#]),
            (
                r#"chanel == "chat" || chanel == "x" || foo"#,
                &[r#"unknown field "chanel""#, r#"unknown field "foo""#],
            ),
            (
                r#"channel == "chatt""#,
                &[
                    r#""chatt" is not a value of "channel" (allowed: phone, chat, email, social, onsite)"#,
                ],
            ),
            (
                r#"channel in ["chat", "fax", 3]"#,
                &[
                    r#""fax" is not a value of "channel" (allowed: phone, chat, email, social, onsite)"#,
                    r#"3 is not a value of "channel" (allowed: phone, chat, email, social, onsite)"#,
                ],
            ),
            (
                r#"channel < "chat""#,
                &[
                    r#""<" needs an ordered field (number, duration, timestamp or string), but "channel" is an enum field"#,
                ],
            ),
            (
                "resolved > false",
                &[
                    r#"">" needs an ordered field (number, duration, timestamp or string), but "resolved" is a bool field"#,
                ],
            ),
            (
                r#"first_response_seconds <= "900""#,
                &[r#""first_response_seconds" is a duration field; "900" is not a number"#],
            ),
            (
                "reopen_count == true",
                &[r#""reopen_count" is a number field; true is not a number"#],
            ),
            (
                "resolved == 1",
                &[r#""resolved" is a bool field; 1 is not true or false"#],
            ),
            (
                r#"resolved in [true, "yes"]"#,
                &[r#""resolved" is a bool field; "yes" is not true or false"#],
            ),
            (
                "agent_id == 17",
                &[r#""agent_id" is a string field; 17 is not a string (quote it: "17")"#],
            ),
            (
                r#"created_at > "yesterday""#,
                &[
                    r#""created_at" is a timestamp field; "yesterday" is not an RFC 3339 timestamp (e.g. "2024-01-31T09:00:00Z")"#,
                ],
            ),
            (
                "created_at > true",
                &[
                    r#""created_at" is a timestamp field; true is not a timestamp (use an RFC 3339 string or unix seconds)"#,
                ],
            ),
            (
                "reopen_count < null",
                &[
                    r#""<" cannot compare "reopen_count" with null; only == null and != null test for null"#,
                ],
            ),
            (
                "reopen_count in [1, null]",
                &[r#"null in an "in" list never matches; use reopen_count == null"#],
            ),
            (
                "agent_id not in [null]",
                &[r#"null in a "not in" list has no effect; use agent_id != null"#],
            ),
            (
                r#"chanel == 1 && channel == "fax" && !(resolved <= 1)"#,
                &[
                    r#"unknown field "chanel""#,
                    r#""fax" is not a value of "channel" (allowed: phone, chat, email, social, onsite)"#,
                    r#""<=" needs an ordered field (number, duration, timestamp or string), but "resolved" is a bool field"#,
                    r#""resolved" is a bool field; 1 is not true or false"#,
                ],
            ),
        ];
        for &(src, want) in cases {
            assert_eq!(check_ticket(src), want, "{src}");
        }
    }

    #[test]
    fn check_rejects_malformed_trees() {
        let schema = FactType::Ticket.schema();
        let descriptions = |e: Expr| -> Vec<String> {
            e.check(&|name| schema.field(name).map(FieldSpec::from))
                .into_iter()
                .map(|v| v.description)
                .collect()
        };
        assert_eq!(
            descriptions(cmp("reopen_count", CompareOp::In, n(1.0))),
            vec![r#""in" on "reopen_count" needs a list of values, e.g. ["a", "b"]"#]
        );
        assert_eq!(
            descriptions(cmp("reopen_count", CompareOp::NotIn, Literal::List(vec![]))),
            vec![r#""not in" on "reopen_count" needs at least one value"#]
        );
        assert_eq!(
            descriptions(cmp(
                "reopen_count",
                CompareOp::Eq,
                Literal::List(vec![n(1.0)])
            )),
            vec![
                r#"a list is only allowed after "in" or "not in", not after "==" on "reopen_count""#
            ]
        );
    }

    #[test]
    fn parse_error_is_an_error() {
        let e: Box<dyn std::error::Error> = Box::new(err("a =="));
        assert_eq!(
            e.to_string(),
            r#"at position 4: expected a value after "==", found end of input"#
        );
    }

    #[test]
    fn literal_serde_derives_exist() {
        fn assert_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        assert_serde::<Literal>();
    }

    // -- property tests ------------------------------------------------------

    fn field_name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,10}".prop_filter("keywords are not field names", |s| {
            !KEYWORDS.contains(&s.as_str())
        })
    }

    fn number() -> impl Strategy<Value = f64> {
        use proptest::num::f64 as f;
        prop_oneof![
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
            f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO,
        ]
    }

    fn scalar() -> impl Strategy<Value = Literal> {
        prop_oneof![
            any::<String>().prop_map(Literal::String),
            "[a-z\"'\\\\ ]{0,8}".prop_map(Literal::String),
            number().prop_map(Literal::Number),
            any::<bool>().prop_map(Literal::Bool),
            Just(Literal::Null),
        ]
    }

    fn compare() -> impl Strategy<Value = Expr> {
        let ops = prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge),
        ];
        prop_oneof![
            (field_name(), ops, scalar()).prop_map(|(field, op, value)| Expr::Compare {
                field,
                op,
                value
            }),
            field_name().prop_map(|f| bare(&f)),
            (
                field_name(),
                prop_oneof![Just(CompareOp::In), Just(CompareOp::NotIn)],
                prop::collection::vec(scalar(), 1..4),
            )
                .prop_map(|(field, op, items)| Expr::Compare {
                    field,
                    op,
                    value: Literal::List(items),
                }),
        ]
    }

    /// Normalised trees: no empty or single-child And/Or, no And directly
    /// in And, no Or directly in Or.
    fn expr() -> impl Strategy<Value = Expr> {
        compare().prop_recursive(5, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|v| join(v, true)),
                prop::collection::vec(inner, 2..4).prop_map(|v| join(v, false)),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn printing_round_trips(e in expr()) {
            let printed = e.to_string();
            prop_assert_eq!(parse(&printed), Ok(e), "printed: {}", printed);
        }

        #[test]
        fn parse_never_panics(src in any::<String>()) {
            let _ = parse(&src);
        }

        #[test]
        fn parse_token_soup_never_panics_and_is_stable(
            src in r#"[a-c_ ()!&|=<>"'\\,\[\]0-9.eE+\-]{0,40}|(in|not|true|false|null|[a-c]|==|<=|!|&&|\|\||\(|\)|\[|\]|,|"x"|-?1\.5e3| )*"#
        ) {
            if let Ok(e) = parse(&src) {
                let printed = e.to_string();
                prop_assert_eq!(parse(&printed), Ok(e), "src {} printed {}", src, printed);
            }
        }

        #[test]
        fn eval_never_panics(e in expr(), v in prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number().prop_map(Value::Number),
            any::<String>().prop_map(Value::String),
        ]) {
            // Not is the exact negation, whatever the value.
            let not = Expr::Not(Box::new(e.clone()));
            prop_assert_eq!(not.eval(&|_| v.clone()), !e.eval(&|_| v.clone()));
        }
    }
}
