//! Parse and type errors carry the 1-based character position, as PostgreSQL reports them.

/// A refused expression: where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based character position in the expression.
    pub position: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.position, self.message)
    }
}
