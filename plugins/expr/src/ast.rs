//! The parsed expression. Every node keeps the 1-based character position it starts at, so
//! type errors point where PostgreSQL would.

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
pub enum Key {
    /// A text key: object field.
    Field(String),
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
pub struct Node {
    pub pos: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Column(Column),
    /// A string literal (type `unknown` until the type check coerces it).
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// `->` (json) or `->>` (text, `as_text`).
    Get {
        base: Box<Node>,
        key: Key,
        as_text: bool,
    },
    /// `#>` / `#>>`; `None` is a NULL path.
    Path {
        base: Box<Node>,
        path: Option<Vec<Option<String>>>,
        as_text: bool,
    },
    /// `=` (`equal`) or `<>` / `!=`.
    Cmp {
        equal: bool,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `[NOT] LIKE` / `[NOT] ILIKE` (`insensitive`).
    Like {
        negated: bool,
        insensitive: bool,
        left: Box<Node>,
        pattern: Box<Node>,
    },
    /// `[NOT] IN (…)`.
    In {
        negated: bool,
        left: Box<Node>,
        list: Vec<Node>,
    },
    /// `IS [NOT] NULL|TRUE|FALSE|UNKNOWN`.
    Is {
        negated: bool,
        test: IsTest,
        operand: Box<Node>,
    },
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// A function provided by a plugin.
    Call {
        name: String,
        args: Vec<Node>,
    },
}
