//! Checking input against a domain's rules, without knowing how the answer
//! reaches the client: domain modules return [`Invalid`], and the HTTP layer
//! turns it into a 400 problem document (`http::error`).

use serde::Serialize;

/// One invalid input field, listed in a validation problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name or path, e.g. `guests`, `amenities[2]`, `Idempotency-Key`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Input that breaks a domain rule: every invalid field, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

/// Collects field errors so a client learns about every invalid field in one
/// round trip instead of fixing them one by one.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) -> &mut Self {
        if !ok {
            self.errors.push(FieldError {
                field: field.to_string(),
                message: message.into(),
            });
        }
        self
    }

    /// Checks an optional text field's trimmed length.
    pub fn text(&mut self, value: &str, field: &str, min: usize, max: usize) -> &mut Self {
        let len = value.trim().chars().count();
        self.check(
            (min..=max).contains(&len),
            field,
            if min > 0 {
                format!("must be {min} to {max} characters")
            } else {
                format!("must be at most {max} characters")
            },
        )
    }

    /// Every error recorded, if any.
    pub fn finish(&mut self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(std::mem::take(&mut self.errors)))
        }
    }
}
