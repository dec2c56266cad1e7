//! Validation errors that name the offending field, mapped to 422 at the HTTP edge.

/// A value that failed validation; `field` is the dotted path of the input field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The input field at fault, e.g. `number` or `turn_detection.threshold`.
    pub field: String,
    /// A human explanation of what is expected.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field` with a human `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Re-roots the error under a parent field (`turn_detection` + `threshold`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}
