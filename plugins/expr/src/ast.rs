//! The parsed expression. Every node keeps the 1-based character position it starts at, so
//! type errors point where PostgreSQL would. Literals borrow from the source text.

use std::borrow::Cow;

/// A column of MIG's `loaders` row that targeting may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `env`: the environment the loader reported (json).
    Env,
    /// `tags`: the tags the loader reported (json).
    Tags,
    /// `attributes`: set by administrators (json).
    Attributes,
    /// `name`: the agent hostname the loader reported (text).
    Name,
    /// `loadername`: the loader entry's name (text).
    LoaderName,
}

impl Column {
    pub fn from_name(name: &str) -> Option<Column> {
        Some(match name {
            "env" => Column::Env,
            "tags" => Column::Tags,
            "attributes" => Column::Attributes,
            "name" => Column::Name,
            "loadername" => Column::LoaderName,
            _ => return None,
        })
    }
}

/// The right side of `->` / `->>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Key<'a> {
    /// A text key: object field.
    Field(Cow<'a, str>),
    /// An integer: array element (negative counts from the end).
    Index(i64),
    /// `NULL`: the result is NULL.
    Null,
}

/// What `IS [NOT] …` tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsTest {
    Null,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    pub pos: usize,
    pub kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    Column(Column),
    /// A string literal (type `unknown` until the type check coerces it).
    Str(Cow<'a, str>),
    Num(f64),
    Bool(bool),
    Null,
    /// `->` (json) or `->>` (text, `as_text`).
    Get {
        base: Box<Node<'a>>,
        key: Key<'a>,
        as_text: bool,
    },
    /// `#>` / `#>>`; `None` is a NULL path.
    Path {
        base: Box<Node<'a>>,
        path: Option<Vec<Option<String>>>,
        as_text: bool,
    },
    /// `=` (`equal`) or `<>` / `!=`.
    Cmp {
        equal: bool,
        left: Box<Node<'a>>,
        right: Box<Node<'a>>,
    },
    /// `[NOT] LIKE` / `[NOT] ILIKE` (`insensitive`).
    Like {
        negated: bool,
        insensitive: bool,
        left: Box<Node<'a>>,
        pattern: Box<Node<'a>>,
    },
    /// `[NOT] IN (…)`.
    In {
        negated: bool,
        left: Box<Node<'a>>,
        list: Vec<Node<'a>>,
    },
    /// `IS [NOT] NULL|TRUE|FALSE|UNKNOWN`.
    Is {
        negated: bool,
        test: IsTest,
        operand: Box<Node<'a>>,
    },
    Not(Box<Node<'a>>),
    And(Vec<Node<'a>>),
    Or(Vec<Node<'a>>),
    /// A function provided by a plugin.
    Call {
        name: Cow<'a, str>,
        args: Vec<Node<'a>>,
    },
}
