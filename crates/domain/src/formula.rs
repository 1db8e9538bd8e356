//! Arithmetic over indicator keys, for derived indicators such as
//! `promoter_pct - detractor_pct` or `(a + b) / 2`.
//!
//! Grammar (whitespace is free):
//!
//! ```text
//! expr    := term ( ("+" | "-") term )*
//! term    := unary ( ("*" | "/") unary )*
//! unary   := "-" unary | primary
//! primary := number | key | "(" expr ")"
//! number  := digits ("." digits)? ([eE] [+-]? digits)?
//! key     := [a-zA-Z_][a-zA-Z0-9_]*
//! ```
//!
//! Binary operators are left-associative. A minus sign is always the unary
//! operator: `-2` parses as `Neg(Number(2))`, so number literals in parsed
//! formulas are never negative. Printing ([`Display`]) is canonical, with
//! the fewest parentheses that parse back to the same tree.

use std::collections::BTreeSet;
use std::fmt::{self, Display};

use crate::filter::{
    ParseError, format_number, is_ident_start, scan_ident, scan_number, skip_whitespace,
};

/// How deeply `-` and `(` may nest before parsing gives up.
const MAX_DEPTH: usize = 200;

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    /// A number literal (never negative when parsed: see [`Formula::Neg`]).
    Number(f64),
    /// The value of another indicator, by key.
    Ref(String),
    /// Unary minus.
    Neg(Box<Formula>),
    /// A binary operation.
    Binary(BinOp, Box<Formula>, Box<Formula>),
}

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl BinOp {
    /// The operator symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    /// Binding strength: `+ -` 1, `* /` 2.
    fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
        }
    }
}

impl Display for BinOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a formula such as `(a + b) / 2`.
pub fn parse_formula(src: &str) -> Result<Formula, ParseError> {
    let mut parser = Parser::new(src)?;
    let formula = parser.sum(None)?;
    if parser.cur.tok != Tok::End {
        return Err(parser.unexpected("expected an operator or end of input"));
    }
    Ok(formula)
}

impl Formula {
    /// Every indicator key the formula references.
    pub fn refs(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Formula::Number(_) => {}
            Formula::Ref(key) => {
                out.insert(key.as_str());
            }
            Formula::Neg(inner) => inner.collect_refs(out),
            Formula::Binary(_, left, right) => {
                left.collect_refs(out);
                right.collect_refs(out);
            }
        }
    }

    /// Evaluates the formula; `get` gives an indicator's value. `None` when
    /// a referenced value is `None`, on division by zero, or when any
    /// intermediate result is not finite.
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        let value = match self {
            Formula::Number(x) => *x,
            Formula::Ref(key) => get(key)?,
            Formula::Neg(inner) => -inner.eval(get)?,
            Formula::Binary(op, left, right) => {
                let (a, b) = (left.eval(get)?, right.eval(get)?);
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div if b == 0.0 => return None,
                    BinOp::Div => a / b,
                }
            }
        };
        value.is_finite().then_some(value)
    }

    /// Binding strength when printed: binary by operator, `-x` 3, atoms 4.
    fn precedence(&self) -> u8 {
        match self {
            Formula::Binary(op, ..) => op.precedence(),
            Formula::Neg(_) => 3,
            // A negative literal prints with a leading minus.
            Formula::Number(x) if x.is_sign_negative() => 3,
            Formula::Number(_) | Formula::Ref(_) => 4,
        }
    }

    /// Prints `self`, parenthesised when it binds more loosely than `min`.
    fn write_at(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// The canonical form: minimal parentheses, left-associative, so
/// `(a - b) - c` prints `a - b - c` and `a - (b - c)` keeps its
/// parentheses.
impl Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Formula::Number(x) => f.write_str(&format_number(*x)),
            Formula::Ref(key) => f.write_str(key),
            Formula::Neg(inner) => {
                f.write_str("-")?;
                inner.write_at(f, 3)
            }
            Formula::Binary(op, left, right) => {
                let p = op.precedence();
                left.write_at(f, p)?;
                write!(f, " {op} ")?;
                right.write_at(f, p + 1)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Lexer and parser

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(BinOp),
    LParen,
    RParen,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn lex(src: &str, pos: usize) -> Result<Token, ParseError> {
    let start = skip_whitespace(src, pos);
    let Some(c) = src.get(start..).and_then(|rest| rest.chars().next()) else {
        return Ok(Token {
            tok: Tok::End,
            start,
            end: start,
        });
    };
    let (tok, end) = match c {
        '+' => (Tok::Op(BinOp::Add), start + 1),
        '-' => (Tok::Op(BinOp::Sub), start + 1),
        '*' => (Tok::Op(BinOp::Mul), start + 1),
        '/' => (Tok::Op(BinOp::Div), start + 1),
        '(' => (Tok::LParen, start + 1),
        ')' => (Tok::RParen, start + 1),
        '0'..='9' => {
            let (x, end) = scan_number(src, start)?;
            (Tok::Num(x), end)
        }
        c if is_ident_start(c) => {
            let end = scan_ident(src, start);
            (
                Tok::Ident(src.get(start..end).unwrap_or("").to_string()),
                end,
            )
        }
        c => {
            return Err(ParseError::new(
                start,
                format!("unexpected character {c:?}"),
            ));
        }
    };
    Ok(Token { tok, start, end })
}

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

    fn unexpected(&self, expected: &str) -> ParseError {
        let text = self.src.get(self.cur.start..self.cur.end).unwrap_or("");
        let found = match self.cur.tok {
            Tok::End => "end of input".to_string(),
            Tok::Num(_) => format!("the number {text}"),
            _ => format!("\"{text}\""),
        };
        ParseError::new(self.cur.start, format!("{expected}, found {found}"))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                self.cur.start,
                "formula is nested too deeply",
            ));
        }
        Ok(())
    }

    fn sum(&mut self, after: Option<&str>) -> Result<Formula, ParseError> {
        let mut left = self.product(after)?;
        while let Tok::Op(op @ (BinOp::Add | BinOp::Sub)) = self.cur.tok {
            self.advance()?;
            let right = self.product(Some(op.as_str()))?;
            left = Formula::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn product(&mut self, after: Option<&str>) -> Result<Formula, ParseError> {
        let mut left = self.unary(after)?;
        while let Tok::Op(op @ (BinOp::Mul | BinOp::Div)) = self.cur.tok {
            self.advance()?;
            let right = self.unary(Some(op.as_str()))?;
            left = Formula::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Formula, ParseError> {
        let formula = match &self.cur.tok {
            Tok::Op(BinOp::Sub) => {
                self.enter()?;
                self.advance()?;
                let inner = self.unary(Some("-"))?;
                self.depth -= 1;
                return Ok(Formula::Neg(Box::new(inner)));
            }
            Tok::LParen => {
                self.enter()?;
                let open = self.cur.start;
                self.advance()?;
                let inner = self.sum(Some("("))?;
                if self.cur.tok != Tok::RParen {
                    return Err(self.unexpected(&format!(
                        "expected \")\" to close the \"(\" at position {open}"
                    )));
                }
                self.depth -= 1;
                inner
            }
            Tok::Num(x) => Formula::Number(*x),
            Tok::Ident(key) => Formula::Ref(key.clone()),
            _ => {
                let mut expected =
                    String::from("expected a number, an indicator key, \"-\" or \"(\"");
                if let Some(after) = after {
                    expected.push_str(&format!(" after \"{after}\""));
                }
                return Err(self.unexpected(&expected));
            }
        };
        self.advance()?;
        Ok(formula)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn num(x: f64) -> Formula {
        Formula::Number(x)
    }

    fn r(key: &str) -> Formula {
        Formula::Ref(key.to_string())
    }

    fn neg(f: Formula) -> Formula {
        Formula::Neg(Box::new(f))
    }

    fn bin(op: BinOp, a: Formula, b: Formula) -> Formula {
        Formula::Binary(op, Box::new(a), Box::new(b))
    }

    fn round(src: &str, canonical: &str) -> Formula {
        let f = parse_formula(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(f.to_string(), canonical, "printing {src}");
        assert_eq!(
            parse_formula(canonical),
            Ok(f.clone()),
            "reparsing {canonical}"
        );
        f
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            round(
                "promoter_pct - detractor_pct",
                "promoter_pct - detractor_pct"
            ),
            bin(BinOp::Sub, r("promoter_pct"), r("detractor_pct"))
        );
        assert_eq!(
            round("(a + b) / 2", "(a + b) / 2"),
            bin(BinOp::Div, bin(BinOp::Add, r("a"), r("b")), num(2.0))
        );
        assert_eq!(
            round("a + b * c", "a + b * c"),
            bin(BinOp::Add, r("a"), bin(BinOp::Mul, r("b"), r("c")))
        );
        assert_eq!(
            round("(a - b) - c", "a - b - c"),
            bin(BinOp::Sub, bin(BinOp::Sub, r("a"), r("b")), r("c"))
        );
        assert_eq!(
            round("a - (b - c)", "a - (b - c)"),
            bin(BinOp::Sub, r("a"), bin(BinOp::Sub, r("b"), r("c")))
        );
        round("a / (b * c)", "a / (b * c)");
        round("a / b * c", "a / b * c");
        round("(a * b) + (c / d)", "a * b + c / d");
        round("a + (b + c)", "a + (b + c)");
        round("a*(b+c)", "a * (b + c)");
        assert_eq!(round("-2", "-2"), neg(num(2.0)));
        assert_eq!(round("--a", "--a"), neg(neg(r("a"))));
        assert_eq!(
            round("a - -b", "a - -b"),
            bin(BinOp::Sub, r("a"), neg(r("b")))
        );
        assert_eq!(round("a-1", "a - 1"), bin(BinOp::Sub, r("a"), num(1.0)));
        assert_eq!(
            round("-(a + b)", "-(a + b)"),
            neg(bin(BinOp::Add, r("a"), r("b")))
        );
        assert_eq!(
            round("-a * b", "-a * b"),
            bin(BinOp::Mul, neg(r("a")), r("b"))
        );
        assert_eq!(
            round("-(a * b)", "-(a * b)"),
            neg(bin(BinOp::Mul, r("a"), r("b")))
        );
        round("100 * x / 3.5", "100 * x / 3.5");
        round("1e3 + 2.50 + 1e-7 + 1e20", "1000 + 2.5 + 1e-7 + 1e20");
        round(" ( ( x ) ) ", "x");
        // A negative literal built by hand prints like the parser's form.
        assert_eq!(num(-2.0).to_string(), "-2");
        assert_eq!(bin(BinOp::Mul, r("a"), num(-2.0)).to_string(), "a * -2");
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "",
                0,
                "expected a number, an indicator key, \"-\" or \"(\", found end of input",
            ),
            (
                "a +",
                3,
                "expected a number, an indicator key, \"-\" or \"(\" after \"+\", found end of input",
            ),
            (
                "a * / b",
                4,
                "expected a number, an indicator key, \"-\" or \"(\" after \"*\", found \"/\"",
            ),
            (
                "a b",
                2,
                "expected an operator or end of input, found \"b\"",
            ),
            (
                "a 2",
                2,
                "expected an operator or end of input, found the number 2",
            ),
            (
                "(a + b",
                6,
                "expected \")\" to close the \"(\" at position 0, found end of input",
            ),
            (
                "a + b)",
                5,
                "expected an operator or end of input, found \")\"",
            ),
            (
                "()",
                1,
                "expected a number, an indicator key, \"-\" or \"(\" after \"(\", found \")\"",
            ),
            ("a % b", 2, "unexpected character '%'"),
            ("1.2.3", 0, "invalid number \"1.2.3\""),
            ("2x", 0, "invalid number \"2x\""),
            ("1e999", 0, "number \"1e999\" is out of range"),
            (
                "+a",
                0,
                "expected a number, an indicator key, \"-\" or \"(\", found \"+\"",
            ),
        ];
        for &(src, position, message) in cases {
            match parse_formula(src) {
                Ok(f) => panic!("{src} parsed as {f:?}"),
                Err(e) => assert_eq!(
                    (e.position, e.message.as_str()),
                    (position, message),
                    "{src}"
                ),
            }
        }
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        assert!(parse_formula(&deep).is_err());
        assert!(parse_formula(&"-".repeat(1000)).is_err());
    }

    fn values(key: &str) -> Option<f64> {
        match key {
            "promoter_pct" => Some(62.5),
            "detractor_pct" => Some(12.5),
            "a" => Some(3.0),
            "b" => Some(5.0),
            "zero" => Some(0.0),
            "big" => Some(1e308),
            _ => None,
        }
    }

    fn eval(src: &str) -> Option<f64> {
        parse_formula(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval(&values)
    }

    #[test]
    fn evaluates() {
        assert_eq!(eval("promoter_pct - detractor_pct"), Some(50.0));
        assert_eq!(eval("(a + b) / 2"), Some(4.0));
        assert_eq!(eval("a + b / 2"), Some(5.5));
        assert_eq!(eval("a - b - 1"), Some(-3.0));
        assert_eq!(eval("a - (b - 1)"), Some(-1.0));
        assert_eq!(eval("-a * b"), Some(-15.0));
        assert_eq!(eval("--a"), Some(3.0));
        assert_eq!(eval("a / b * 100"), Some(60.0));
        assert_eq!(eval("24 / 4 / 2"), Some(3.0));
        assert_eq!(eval("a / zero"), None);
        assert_eq!(eval("0 / 0"), None);
        assert_eq!(eval("a / (b - 5)"), None);
        assert_eq!(eval("a + missing"), None);
        assert_eq!(eval("big * 10"), None);
        assert_eq!(eval("big * 10 - big * 10"), None);
        assert_eq!(eval("zero * -1"), Some(0.0));
        assert_eq!(Formula::Ref("n".into()).eval(&|_| Some(f64::NAN)), None);
    }

    #[test]
    fn refs_lists_every_key_once() {
        let f = parse_formula("b + a * (b - c) / 2").unwrap();
        assert_eq!(
            f.refs().into_iter().collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        assert!(parse_formula("1 + 2").unwrap().refs().is_empty());
    }

    fn formula() -> impl Strategy<Value = Formula> {
        use proptest::num::f64 as f;
        let leaf = prop_oneof![
            (0u32..100_000).prop_map(|i| Formula::Number(f64::from(i))),
            (f::POSITIVE | f::NORMAL | f::SUBNORMAL | f::ZERO).prop_map(Formula::Number),
            "[a-zA-Z_][a-zA-Z0-9_]{0,10}".prop_map(Formula::Ref),
        ];
        let op = prop_oneof![
            Just(BinOp::Add),
            Just(BinOp::Sub),
            Just(BinOp::Mul),
            Just(BinOp::Div),
        ];
        leaf.prop_recursive(6, 64, 2, move |inner| {
            prop_oneof![
                inner.clone().prop_map(|f| Formula::Neg(Box::new(f))),
                (op.clone(), inner.clone(), inner).prop_map(|(op, a, b)| Formula::Binary(
                    op,
                    Box::new(a),
                    Box::new(b)
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn printing_round_trips(f in formula()) {
            let printed = f.to_string();
            prop_assert_eq!(parse_formula(&printed), Ok(f), "printed: {}", printed);
        }

        #[test]
        fn parse_never_panics(src in any::<String>()) {
            let _ = parse_formula(&src);
        }

        #[test]
        fn token_soup_never_panics_and_is_stable(src in r"[a-c0-9.eE+\-*/() %]{0,40}") {
            if let Ok(f) = parse_formula(&src) {
                let printed = f.to_string();
                prop_assert_eq!(parse_formula(&printed), Ok(f), "src {} printed {}", src, printed);
            }
        }
    }
}
