//! Field-level validation problems, shared by every definition type. A
//! request fails with all its violations at once, each naming its path.

use std::fmt;

/// One problem with one field, e.g. `items[2].weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, dotted with `[i]` for list positions.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The same violation under a parent path: `nested("indicator")` turns
    /// `numerator.field` into `indicator.numerator.field`.
    pub fn nested(mut self, parent: &str) -> Self {
        self.field = join_path(parent, &self.field);
        self
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// `parent.child`, or just the non-empty one.
pub fn join_path(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_string(),
        (_, true) => parent.to_string(),
        _ if child.starts_with('[') => format!("{parent}{child}"),
        _ => format!("{parent}.{child}"),
    }
}

/// A non-empty set of violations: the error of every validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    /// A single violation.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self(vec![FieldViolation::new(field, description)])
    }

    /// `Ok(())` when empty, else the error.
    pub fn into_result(list: Vec<FieldViolation>) -> Result<(), Violations> {
        if list.is_empty() {
            Ok(())
        } else {
            Err(Violations(list))
        }
    }
}
