//! Parses an expression into a tree, then resolves every name to a table, a `get`
//! scalar, a comprehension/lambda variable or a built-in function. Anything else is a
//! compile error, so a document with a typo fails when it is loaded, not on every poll.

use super::lexer::{tokenize, Token};
use super::value::Value;
use super::CompileError;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(Value),
    /// `$index`.
    Index,
    /// A name before resolution; never evaluated.
    Name(String),
    Table(usize),
    Scalar(usize),
    /// A comprehension or lambda variable: its slot in the locals stack.
    Local(usize),
    Subscript(Box<Expr>, Box<Expr>),
    /// `x[a:b]`, either bound optional.
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    Method(Box<Expr>, Method, Vec<Expr>),
    Call(Builtin, Vec<Expr>),
    Neg(Box<Expr>),
    Pos(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    IfElse {
        cond: Box<Expr>,
        then: Box<Expr>,
        other: Box<Expr>,
    },
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Comp {
        elt: Box<Expr>,
        target: Target,
        iter: Box<Expr>,
        conds: Vec<Expr>,
    },
    /// `{key: value for target in iter if cond}`.
    DictComp {
        key: Box<Expr>,
        value: Box<Expr>,
        target: Target,
        iter: Box<Expr>,
        conds: Vec<Expr>,
    },
}

/// `x` or `(x, y)` in `for ... in`; names become slots when resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    One(String, usize),
    Many(Vec<(String, usize)>),
}

/// Methods of dicts (`values items keys get`) and strings
/// (`split replace startswith endswith strip join lower upper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Values,
    Items,
    Keys,
    Get,
    Split,
    Replace,
    StartsWith,
    EndsWith,
    Strip,
    Join,
    Lower,
    Upper,
}

impl Method {
    fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "values" => Method::Values,
            "items" => Method::Items,
            "keys" => Method::Keys,
            "get" => Method::Get,
            "split" => Method::Split,
            "replace" => Method::Replace,
            "startswith" => Method::StartsWith,
            "endswith" => Method::EndsWith,
            "strip" => Method::Strip,
            "join" => Method::Join,
            "lower" => Method::Lower,
            "upper" => Method::Upper,
            _ => return None,
        })
    }

    fn arity_ok(self, n: usize) -> bool {
        match self {
            Method::Values | Method::Items | Method::Keys | Method::Lower | Method::Upper => n == 0,
            Method::Get => (1..=2).contains(&n),
            Method::Split | Method::Strip => n <= 1,
            Method::Replace => n == 2,
            Method::StartsWith | Method::EndsWith | Method::Join => n == 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Len,
    Int,
    Float,
    Str,
    Round,
    Abs,
    Min,
    Max,
    Sum,
    Bool,
    /// `match(pattern, text)`: Python's `re.match` (anchored at the start) as a bool.
    Match,
    Sorted,
    List,
    Any,
    All,
    /// `zip(a, b, ...)`: tuples of the items at the same position, as long as the shortest.
    Zip,
    /// `config(section, key[, default])`: a value of the running plugin's file.
    Config,
    /// `meta(key[, default])`: a resource metadata value.
    Meta,
    /// `merge(d1, d2)`: a dict with d2's entries over d1's.
    Merge,
    /// `ip_from_octets(s)`: 4 or 16 raw bytes (an octet string) as an IP address.
    IpFromOctets,
    /// `ipv6_from_index("32.1.13.184...")`: 16 dotted decimal bytes as an IPv6 address.
    Ipv6FromIndex,
}

impl Builtin {
    fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "len" => Builtin::Len,
            "int" | "long" => Builtin::Int,
            "float" => Builtin::Float,
            "str" => Builtin::Str,
            "round" => Builtin::Round,
            "abs" => Builtin::Abs,
            "min" => Builtin::Min,
            "max" => Builtin::Max,
            "sum" => Builtin::Sum,
            "bool" => Builtin::Bool,
            "match" => Builtin::Match,
            "sorted" => Builtin::Sorted,
            "list" => Builtin::List,
            "any" => Builtin::Any,
            "all" => Builtin::All,
            "zip" => Builtin::Zip,
            "config" => Builtin::Config,
            "meta" => Builtin::Meta,
            "merge" => Builtin::Merge,
            "ip_from_octets" => Builtin::IpFromOctets,
            "ipv6_from_index" => Builtin::Ipv6FromIndex,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

const KEYWORDS: [&str; 13] = [
    "and", "or", "not", "in", "is", "if", "else", "for", "lambda", "None", "True", "False", "print",
];

/// What names mean in the document being compiled.
pub trait Names {
    fn table(&self, name: &str) -> Option<usize>;
    fn scalar(&self, name: &str) -> Option<usize>;
    /// The compile error for a name that is neither: says what names are visible here.
    fn unknown(&self, name: &str) -> String {
        format!("unknown name `{name}` (not a table of this document's `oids`)")
    }
}

/// No tables: what a transform's body sees.
pub struct NoNames;

impl Names for NoNames {
    fn table(&self, _: &str) -> Option<usize> {
        None
    }
    fn scalar(&self, _: &str) -> Option<usize> {
        None
    }
    fn unknown(&self, name: &str) -> String {
        format!("unknown name `{name}` (a transform sees only its own parameter)")
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
    /// Nesting of the recursive rules now being parsed (see [`MAX_DEPTH`]).
    depth: usize,
}

/// How deeply an expression may nest (parentheses, brackets, `not`, unary signs, calls,
/// and each link of a chain such as `a + b + c`, which builds a nested tree): far past any
/// real document (the vendor definitions nest 6 deep at most), and short of the
/// recursion that would overflow a 2 MiB thread stack in parsing, evaluation or dropping
/// the tree, even in a debug build (≈25 KiB of stack per level there).
pub const MAX_DEPTH: usize = 32;

impl Parser {
    /// Runs one nested rule, refusing past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        rule: impl FnOnce(&mut Self) -> Result<T, CompileError>,
    ) -> Result<T, CompileError> {
        if self.depth >= MAX_DEPTH {
            return Err(CompileError::at(
                self.here(),
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.depth += 1;
        let result = rule(self);
        self.depth -= 1;
        result
    }

    /// One more link of a left-nested chain; the caller gives `links` back when done.
    fn link(&mut self, links: &mut usize) -> Result<(), CompileError> {
        if self.depth >= MAX_DEPTH {
            return Err(CompileError::at(
                self.here(),
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.depth += 1;
        *links += 1;
        Ok(())
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn here(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(p, _)| *p)
            .unwrap_or(self.end)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Token::Op(o)) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Name(n)) if n == kw)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let hit = self.is_op(op);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_op(&mut self, op: &str) -> Result<(), CompileError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(CompileError::at(self.here(), format!("expected `{op}`")))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), CompileError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(CompileError::at(self.here(), format!("expected `{kw}`")))
        }
    }

    // test: or_test ['if' or_test 'else' test]
    fn test(&mut self) -> Result<Expr, CompileError> {
        self.nested(Self::test_here)
    }

    fn test_here(&mut self) -> Result<Expr, CompileError> {
        if self.is_kw("lambda") {
            return Err(CompileError::at(
                self.here(),
                "`lambda` is only allowed as a whole `transform`",
            ));
        }
        let value = self.or_test()?;
        if self.eat_kw("if") {
            let cond = self.or_test()?;
            self.expect_kw("else")?;
            let other = self.test()?;
            return Ok(Expr::IfElse {
                cond: Box::new(cond),
                then: Box::new(value),
                other: Box::new(other),
            });
        }
        Ok(value)
    }

    /// Runs a chain-building rule and gives back the depth its links took.
    fn chained(
        &mut self,
        rule: impl FnOnce(&mut Self, &mut usize) -> Result<Expr, CompileError>,
    ) -> Result<Expr, CompileError> {
        let mut links = 0;
        let result = rule(self, &mut links);
        self.depth -= links;
        result
    }

    fn or_test(&mut self) -> Result<Expr, CompileError> {
        self.chained(|p, links| {
            let mut left = p.and_test()?;
            while p.eat_kw("or") {
                p.link(links)?;
                let right = p.and_test()?;
                left = Expr::Or(Box::new(left), Box::new(right));
            }
            Ok(left)
        })
    }

    fn and_test(&mut self) -> Result<Expr, CompileError> {
        self.chained(|p, links| {
            let mut left = p.not_test()?;
            while p.eat_kw("and") {
                p.link(links)?;
                let right = p.not_test()?;
                left = Expr::And(Box::new(left), Box::new(right));
            }
            Ok(left)
        })
    }

    fn not_test(&mut self) -> Result<Expr, CompileError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.nested(Self::not_test)?)));
        }
        self.comparison()
    }

    fn cmp_op(&mut self) -> Result<Option<CmpOp>, CompileError> {
        let op = match self.peek() {
            Some(Token::Op("==")) => CmpOp::Eq,
            Some(Token::Op("!=")) => CmpOp::Ne,
            Some(Token::Op("<")) => CmpOp::Lt,
            Some(Token::Op("<=")) => CmpOp::Le,
            Some(Token::Op(">")) => CmpOp::Gt,
            Some(Token::Op(">=")) => CmpOp::Ge,
            Some(Token::Name(n)) if n == "in" => CmpOp::In,
            Some(Token::Name(n)) if n == "not" => {
                // `not in`; a bare `not` here is a syntax error.
                if matches!(self.tokens.get(self.pos + 1), Some((_, Token::Name(m))) if m == "in") {
                    self.pos += 2;
                    return Ok(Some(CmpOp::NotIn));
                }
                return Ok(None);
            }
            Some(Token::Name(n)) if n == "is" => {
                return Err(CompileError::at(
                    self.here(),
                    "`is` is not supported; use `==`",
                ))
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(op))
    }

    fn comparison(&mut self) -> Result<Expr, CompileError> {
        let first = self.arith()?;
        let mut rest = Vec::new();
        while let Some(op) = self.cmp_op()? {
            rest.push((op, self.arith()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Compare(Box::new(first), rest)
        })
    }

    fn arith(&mut self) -> Result<Expr, CompileError> {
        self.binary_chain(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }

    fn term(&mut self) -> Result<Expr, CompileError> {
        // `//` before `/`: the longer operator first.
        self.binary_chain(
            &[
                ("*", BinOp::Mul),
                ("//", BinOp::FloorDiv),
                ("/", BinOp::Div),
                ("%", BinOp::Mod),
            ],
            Self::factor,
        )
    }

    /// `operand (op operand)*`, left-associative, for the operators in `ops`; each link
    /// counts towards the nesting limit.
    fn binary_chain(
        &mut self,
        ops: &[(&str, BinOp)],
        operand: fn(&mut Self) -> Result<Expr, CompileError>,
    ) -> Result<Expr, CompileError> {
        self.chained(|p, links| {
            let mut left = operand(p)?;
            loop {
                let Some(op) = ops
                    .iter()
                    .find(|(text, _)| p.eat_op(text))
                    .map(|(_, op)| *op)
                else {
                    return Ok(left);
                };
                p.link(links)?;
                let right = operand(p)?;
                left = Expr::Binary(op, Box::new(left), Box::new(right));
            }
        })
    }

    fn factor(&mut self) -> Result<Expr, CompileError> {
        if self.eat_op("-") {
            return Ok(Expr::Neg(Box::new(self.nested(Self::factor)?)));
        }
        if self.eat_op("+") {
            return Ok(Expr::Pos(Box::new(self.nested(Self::factor)?)));
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, CompileError> {
        let base = self.postfix()?;
        if self.eat_op("**") {
            let exp = self.nested(Self::factor)?;
            return Ok(Expr::Binary(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, CompileError> {
        self.chained(Self::postfix_chain)
    }

    fn postfix_chain(&mut self, links: &mut usize) -> Result<Expr, CompileError> {
        let mut e = self.atom()?;
        loop {
            if self.is_op(".") || self.is_op("[") {
                self.link(links)?;
            }
            if self.eat_op(".") {
                match self.next() {
                    Some(Token::Index) => e = Expr::Subscript(Box::new(e), Box::new(Expr::Index)),
                    Some(Token::Name(m)) => {
                        let Some(method) = Method::from_name(&m) else {
                            return Err(CompileError::at(
                                self.here(),
                                format!("unsupported attribute `.{m}` (known: .$index, .values() .items() .keys() .get() .split() .replace() .startswith() .endswith() .strip() .join() .lower() .upper())"),
                            ));
                        };
                        self.expect_op("(")?;
                        let args = self.call_args()?;
                        if !method.arity_ok(args.len()) {
                            return Err(CompileError::at(
                                self.here(),
                                format!("wrong number of arguments to `.{m}()`"),
                            ));
                        }
                        e = Expr::Method(Box::new(e), method, args);
                    }
                    _ => {
                        return Err(CompileError::at(
                            self.here(),
                            "expected `$index` or a method after `.`",
                        ))
                    }
                }
            } else if self.eat_op("[") {
                let start = if self.is_op(":") {
                    None
                } else {
                    Some(Box::new(self.test()?))
                };
                if self.eat_op(":") {
                    let end = if self.is_op("]") {
                        None
                    } else {
                        Some(Box::new(self.test()?))
                    };
                    if self.is_op(":") {
                        return Err(CompileError::at(
                            self.here(),
                            "slice steps are not supported",
                        ));
                    }
                    self.expect_op("]")?;
                    e = Expr::Slice(Box::new(e), start, end);
                    continue;
                }
                let Some(key) = start else {
                    return Err(CompileError::at(self.here(), "expected an index"));
                };
                self.expect_op("]")?;
                e = Expr::Subscript(Box::new(e), key);
            } else if self.is_op("(") {
                return Err(CompileError::at(
                    self.here(),
                    "only the built-in functions can be called",
                ));
            } else {
                return Ok(e);
            }
        }
    }

    /// Arguments after an opening `(`, up to and including `)`.
    fn call_args(&mut self) -> Result<Vec<Expr>, CompileError> {
        let mut args = Vec::new();
        if self.eat_op(")") {
            return Ok(args);
        }
        loop {
            args.push(self.test()?);
            if self.eat_op(")") {
                return Ok(args);
            }
            self.expect_op(",")?;
            if self.eat_op(")") {
                return Ok(args);
            }
        }
    }

    fn atom(&mut self) -> Result<Expr, CompileError> {
        let at = self.here();
        match self.next() {
            Some(Token::Int(i)) => Ok(Expr::Const(Value::Int(i))),
            Some(Token::Float(f)) => Ok(Expr::Const(Value::Float(f))),
            Some(Token::Str(mut s)) => {
                // Adjacent literals concatenate, as in Python.
                while let Some(Token::Str(more)) = self.peek() {
                    s.push_str(more);
                    self.pos += 1;
                }
                Ok(Expr::Const(Value::Str(s)))
            }
            Some(Token::Index) => Ok(Expr::Index),
            Some(Token::Name(n)) => match n.as_str() {
                "None" => Ok(Expr::Const(Value::None)),
                "True" => Ok(Expr::Const(Value::Bool(true))),
                "False" => Ok(Expr::Const(Value::Bool(false))),
                kw if KEYWORDS.contains(&kw) => {
                    Err(CompileError::at(at, format!("unexpected keyword `{kw}`")))
                }
                _ => {
                    if self.eat_op("(") {
                        let Some(f) = Builtin::from_name(&n) else {
                            return Err(CompileError::at(
                                at,
                                format!("unknown function `{n}` (known: len, int, long, float, str, round, abs, min, max, sum, bool, match, sorted, list, any, all, config, meta, merge, ip_from_octets, ipv6_from_index)"),
                            ));
                        };
                        let args = self.call_args()?;
                        check_arity(f, &n, args.len(), at)?;
                        Ok(Expr::Call(f, args))
                    } else {
                        Ok(Expr::Name(n))
                    }
                }
            },
            Some(Token::Op("(")) => {
                if self.eat_op(")") {
                    return Ok(Expr::Tuple(Vec::new()));
                }
                let first = self.test()?;
                if self.eat_op(")") {
                    return Ok(first);
                }
                let items = self.comma_items(vec![first], ")", Self::test)?;
                Ok(Expr::Tuple(items))
            }
            Some(Token::Op("[")) => {
                if self.eat_op("]") {
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.test()?;
                if self.eat_kw("for") {
                    let (target, iter, conds) = self.comprehension_tail("]")?;
                    return Ok(Expr::Comp {
                        elt: Box::new(first),
                        target,
                        iter: Box::new(iter),
                        conds,
                    });
                }
                let items = self.comma_items(vec![first], "]", Self::test)?;
                Ok(Expr::List(items))
            }
            Some(Token::Op("{")) => {
                if self.eat_op("}") {
                    return Ok(Expr::Dict(Vec::new()));
                }
                let key = self.test()?;
                self.expect_op(":")?;
                let value = self.test()?;
                if self.eat_kw("for") {
                    let (target, iter, conds) = self.comprehension_tail("}")?;
                    return Ok(Expr::DictComp {
                        key: Box::new(key),
                        value: Box::new(value),
                        target,
                        iter: Box::new(iter),
                        conds,
                    });
                }
                let items = self.comma_items(vec![(key, value)], "}", |p| {
                    let k = p.test()?;
                    p.expect_op(":")?;
                    Ok((k, p.test()?))
                })?;
                Ok(Expr::Dict(items))
            }
            Some(Token::Op(op)) => Err(CompileError::at(at, format!("unexpected `{op}`"))),
            None => Err(CompileError::at(at, "unexpected end of expression")),
        }
    }

    /// `, item` repeated (a trailing comma allowed) up to `close`, which is consumed.
    fn comma_items<T>(
        &mut self,
        mut items: Vec<T>,
        close: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, CompileError>,
    ) -> Result<Vec<T>, CompileError> {
        while self.eat_op(",") {
            if self.is_op(close) {
                break;
            }
            items.push(item(self)?);
        }
        self.expect_op(close)?;
        Ok(items)
    }

    /// After a comprehension's `for`: `<target> in <iterable> [if <condition>]...` and
    /// `close`. One `for` only.
    fn comprehension_tail(
        &mut self,
        close: &str,
    ) -> Result<(Target, Expr, Vec<Expr>), CompileError> {
        let target = self.target()?;
        self.expect_kw("in")?;
        let iter = self.or_test()?;
        let mut conds = Vec::new();
        while self.eat_kw("if") {
            conds.push(self.or_test()?);
        }
        if self.is_kw("for") {
            return Err(CompileError::at(
                self.here(),
                "nested `for` in a comprehension is not supported",
            ));
        }
        self.expect_op(close)?;
        Ok((target, iter, conds))
    }

    fn target_name(&mut self) -> Result<String, CompileError> {
        let at = self.here();
        match self.next() {
            Some(Token::Name(n)) if !KEYWORDS.contains(&n.as_str()) => Ok(n),
            _ => Err(CompileError::at(at, "expected a variable name after `for`")),
        }
    }

    fn target(&mut self) -> Result<Target, CompileError> {
        let names = if self.eat_op("(") {
            let first = self.target_name()?;
            let mut names = self.comma_items(vec![first], ")", Self::target_name)?;
            if names.len() == 1 {
                return Ok(Target::One(names.remove(0), 0));
            }
            names
        } else {
            let mut names = vec![self.target_name()?];
            while self.eat_op(",") {
                names.push(self.target_name()?);
            }
            if names.len() == 1 {
                return Ok(Target::One(names.remove(0), 0));
            }
            names
        };
        Ok(Target::Many(names.into_iter().map(|n| (n, 0)).collect()))
    }
}

fn check_arity(f: Builtin, name: &str, n: usize, at: usize) -> Result<(), CompileError> {
    let ok = match f {
        Builtin::Len | Builtin::Abs | Builtin::Sum => n == 1,
        Builtin::Int | Builtin::Float | Builtin::Str | Builtin::Bool => n == 1,
        Builtin::Round => n == 1 || n == 2,
        Builtin::Min | Builtin::Max | Builtin::Zip => n >= 1,
        Builtin::Match | Builtin::Merge => n == 2,
        Builtin::Sorted | Builtin::List | Builtin::Any | Builtin::All => n == 1,
        Builtin::IpFromOctets | Builtin::Ipv6FromIndex => n == 1,
        Builtin::Config => n == 2 || n == 3,
        Builtin::Meta => n == 1 || n == 2,
    };
    if ok {
        Ok(())
    } else {
        Err(CompileError::at(
            at,
            format!("wrong number of arguments ({n}) to `{name}()`"),
        ))
    }
}

fn parse_tokens(src: &str) -> Result<Parser, CompileError> {
    Ok(Parser {
        tokens: tokenize(src)?,
        pos: 0,
        end: src.len(),
        depth: 0,
    })
}

/// Parses and resolves one value expression.
pub fn compile(src: &str, names: &dyn Names) -> Result<Expr, CompileError> {
    let mut p = parse_tokens(src)?;
    let e = p.test()?;
    if p.pos < p.tokens.len() {
        return Err(CompileError::at(
            p.here(),
            "unexpected text after the expression",
        ));
    }
    resolve(e, &mut Vec::new(), names)
}

/// A transform: `lambda <name>: <expression of name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lambda {
    pub body: Expr,
}

pub fn compile_lambda(src: &str) -> Result<Lambda, CompileError> {
    let mut p = parse_tokens(src)?;
    p.expect_kw("lambda")?;
    let param = p.target_name()?;
    p.expect_op(":")?;
    let body = p.test()?;
    if p.pos < p.tokens.len() {
        return Err(CompileError::at(
            p.here(),
            "unexpected text after the lambda body",
        ));
    }
    let mut scope = vec![param];
    Ok(Lambda {
        body: resolve(body, &mut scope, &NoNames)?,
    })
}

/// Pushes a comprehension's variables onto the scope and numbers their slots.
fn bind_target(target: Target, scope: &mut Vec<String>) -> Target {
    match target {
        Target::One(n, _) => {
            scope.push(n.clone());
            Target::One(n, scope.len() - 1)
        }
        Target::Many(names) => Target::Many(
            names
                .into_iter()
                .map(|(n, _)| {
                    scope.push(n.clone());
                    (n, scope.len() - 1)
                })
                .collect(),
        ),
    }
}

/// A comprehension's parts resolved: the iterable outside its scope (Python evaluates it
/// there), then its target's variables bound and `inner` (element, key and value,
/// conditions) resolved with them; the scope is as before afterwards.
fn comprehension<T>(
    iter: Expr,
    target: Target,
    scope: &mut Vec<String>,
    names: &dyn Names,
    inner: impl FnOnce(&mut Vec<String>) -> Result<T, CompileError>,
) -> Result<(Box<Expr>, Target, T), CompileError> {
    let iter = Box::new(resolve(iter, scope, names)?);
    let depth = scope.len();
    let target = bind_target(target, scope);
    let inner = inner(scope);
    scope.truncate(depth);
    Ok((iter, target, inner?))
}

/// Replaces names by what they refer to; comprehension variables shadow tables.
fn resolve(e: Expr, scope: &mut Vec<String>, names: &dyn Names) -> Result<Expr, CompileError> {
    let r = |e: Expr, scope: &mut Vec<String>| resolve(e, scope, names);
    let rb = |e: Box<Expr>, scope: &mut Vec<String>| -> Result<Box<Expr>, CompileError> {
        Ok(Box::new(resolve(*e, scope, names)?))
    };
    Ok(match e {
        Expr::Name(n) => {
            if let Some(slot) = scope.iter().rposition(|s| *s == n) {
                Expr::Local(slot)
            } else if let Some(t) = names.table(&n) {
                Expr::Table(t)
            } else if let Some(s) = names.scalar(&n) {
                Expr::Scalar(s)
            } else {
                return Err(CompileError::at(0, names.unknown(&n)));
            }
        }
        Expr::Subscript(a, b) => Expr::Subscript(rb(a, scope)?, rb(b, scope)?),
        Expr::Slice(a, lo, hi) => Expr::Slice(
            rb(a, scope)?,
            lo.map(|x| rb(x, scope)).transpose()?,
            hi.map(|x| rb(x, scope)).transpose()?,
        ),
        Expr::Dict(items) => Expr::Dict(
            items
                .into_iter()
                .map(|(k, v)| Ok((r(k, scope)?, r(v, scope)?)))
                .collect::<Result<_, CompileError>>()?,
        ),
        Expr::DictComp {
            key,
            value,
            target,
            iter,
            conds,
        } => {
            let (iter, target, (key, value, conds)) =
                comprehension(*iter, target, scope, names, |scope| {
                    let (key, value) = (rb(key, scope)?, rb(value, scope)?);
                    let conds = conds.into_iter().map(|x| r(x, scope));
                    Ok((key, value, conds.collect::<Result<_, _>>()?))
                })?;
            Expr::DictComp {
                key,
                value,
                target,
                iter,
                conds,
            }
        }
        Expr::Method(a, m, args) => Expr::Method(
            rb(a, scope)?,
            m,
            args.into_iter()
                .map(|x| r(x, scope))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Call(f, args) => Expr::Call(
            f,
            args.into_iter()
                .map(|x| r(x, scope))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Neg(a) => Expr::Neg(rb(a, scope)?),
        Expr::Pos(a) => Expr::Pos(rb(a, scope)?),
        Expr::Not(a) => Expr::Not(rb(a, scope)?),
        Expr::Binary(op, a, b) => Expr::Binary(op, rb(a, scope)?, rb(b, scope)?),
        Expr::Compare(a, rest) => Expr::Compare(
            rb(a, scope)?,
            rest.into_iter()
                .map(|(op, x)| Ok((op, r(x, scope)?)))
                .collect::<Result<_, CompileError>>()?,
        ),
        Expr::And(a, b) => Expr::And(rb(a, scope)?, rb(b, scope)?),
        Expr::Or(a, b) => Expr::Or(rb(a, scope)?, rb(b, scope)?),
        Expr::IfElse { cond, then, other } => Expr::IfElse {
            cond: rb(cond, scope)?,
            then: rb(then, scope)?,
            other: rb(other, scope)?,
        },
        Expr::List(items) => Expr::List(
            items
                .into_iter()
                .map(|x| r(x, scope))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Tuple(items) => Expr::Tuple(
            items
                .into_iter()
                .map(|x| r(x, scope))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Comp {
            elt,
            target,
            iter,
            conds,
        } => {
            let (iter, target, (elt, conds)) =
                comprehension(*iter, target, scope, names, |scope| {
                    let elt = rb(elt, scope)?;
                    let conds = conds.into_iter().map(|x| r(x, scope));
                    Ok((elt, conds.collect::<Result<_, _>>()?))
                })?;
            Expr::Comp {
                elt,
                target,
                iter,
                conds,
            }
        }
        other @ (Expr::Const(_)
        | Expr::Index
        | Expr::Table(_)
        | Expr::Scalar(_)
        | Expr::Local(_)) => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T;
    impl Names for T {
        fn table(&self, name: &str) -> Option<usize> {
            ["a", "b", "u"].iter().position(|t| *t == name)
        }
        fn scalar(&self, name: &str) -> Option<usize> {
            (name == "uptime").then_some(0)
        }
    }

    #[test]
    fn every_fixture_form_compiles() {
        for src in [
            "a.$index",
            "1",
            "'ctrl'",
            "'data' if 'Routing Engine' in a.$index else 'ctrl'",
            "float(a.$index) / 100.0 * b.$index",
            "int(a.$index) * b.$index",
            "int(a.$index) * int(b.$index)",
            "len([x for x in a.values() if x == '2'])",
            "len([x for x in a.values() if x in ['1', '2', '3']])",
            "len([(x,y) for (x,y) in a.items() if x in u and y in ['2', '9', '12']])",
            "len([(x,y) for (x,y) in a.items() if x in u and y not in ['6']])",
            "len([(x,y) for (x,y) in a.items() if x in u and y not in ['6'] and u[x] == $index])",
            "uptime",
        ] {
            compile(src, &T).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
        for src in [
            "lambda x: round((x * 1.8) + 32, 2) if x != 0 else 0.0",
            "lambda x: round((x * 1.8) + 32, 2)",
            "lambda x: x * 1000000",
        ] {
            compile_lambda(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
    }

    #[test]
    fn unsupported_forms_are_refused() {
        let unknown_function = "(known: len, int, long, float, str, round, abs, min, max, \
                                sum, bool, match, sorted, list, any, all, config, meta, merge, \
                                ip_from_octets, ipv6_from_index) (at offset 0)";
        let unknown_attribute = "(known: .$index, .values() .items() .keys() .get() .split() \
                                 .replace() .startswith() .endswith() .strip() .join() .lower() \
                                 .upper()) (at offset 11)";
        let cases = [
            (
                "__import__('os')",
                format!("unknown function `__import__` {unknown_function}"),
            ),
            (
                "a.__class__",
                format!("unsupported attribute `.__class__` {unknown_attribute}"),
            ),
            (
                "nosuch.$index",
                "unknown name `nosuch` (not a table of this document's `oids`) (at offset 0)"
                    .into(),
            ),
            (
                "open('x')",
                format!("unknown function `open` {unknown_function}"),
            ),
            (
                "a.$index if",
                "unexpected end of expression (at offset 11)".into(),
            ),
            (
                "lambda x: x",
                "`lambda` is only allowed as a whole `transform` (at offset 0)".into(),
            ),
            (
                "a is None",
                "`is` is not supported; use `==` (at offset 2)".into(),
            ),
            (
                "[x for x in a for y in b]",
                "nested `for` in a comprehension is not supported (at offset 14)".into(),
            ),
            (
                "a[1:2:3]",
                "slice steps are not supported (at offset 5)".into(),
            ),
            (
                "(a.$index)(1)",
                "only the built-in functions can be called (at offset 10)".into(),
            ),
            (
                "x",
                "unknown name `x` (not a table of this document's `oids`) (at offset 0)".into(),
            ),
            ("", "unexpected end of expression (at offset 0)".into()),
        ];
        for (src, want) in cases {
            let err = compile(src, &T).unwrap_err().to_string();
            assert_eq!(err, want, "{src}");
        }
        assert_eq!(
            compile_lambda("lambda x: a.$index")
                .unwrap_err()
                .to_string(),
            "unknown name `a` (a transform sees only its own parameter) (at offset 0)"
        );
        assert_eq!(
            compile_lambda("x * 2").unwrap_err().to_string(),
            "expected `lambda` (at offset 0)"
        );
    }

    #[test]
    fn comprehension_variables_resolve_to_slots() {
        let e = compile("len([(x,y) for (x,y) in a.items() if u[x] == y])", &T).unwrap();
        let Expr::Call(Builtin::Len, args) = e else {
            panic!()
        };
        let Expr::Comp { target, conds, .. } = &args[0] else {
            panic!()
        };
        assert_eq!(
            *target,
            Target::Many(vec![("x".into(), 0), ("y".into(), 1)])
        );
        assert_eq!(
            conds[0],
            Expr::Compare(
                Box::new(Expr::Subscript(
                    Box::new(Expr::Table(2)),
                    Box::new(Expr::Local(0))
                )),
                vec![(CmpOp::Eq, Expr::Local(1))]
            )
        );
    }
}
