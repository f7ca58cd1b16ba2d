//! Request parameters both services parse the same way.

use events::BookingStatus;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ApiError, Validator};
use crate::paging::{List, Page, PageRequest, PagingError};

/// Parses a `?status=` filter; absent or empty means "any status".
pub fn status_filter(raw: Option<&str>) -> Result<Option<BookingStatus>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => BookingStatus::parse(s).map(Some).ok_or_else(|| {
            ApiError::invalid_field("status", "must be PENDING, ACCEPTED, REJECTED or CANCELLED")
        }),
    }
}

/// `?limit=&cursor=`, which every list endpoint takes beside its filters
/// (extract it with its own [`super::ApiQuery`]).
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page these parameters ask for of `list`; a malformed limit or a
    /// cursor `list` did not issue is 400 naming the parameter.
    pub fn request(&self, list: List) -> Result<PageRequest, ApiError> {
        Ok(list.request(self.limit.as_deref(), self.cursor.as_deref())?)
    }
}

impl From<PagingError> for ApiError {
    fn from(e: PagingError) -> Self {
        ApiError::invalid_field(e.field, e.message)
    }
}

/// The body of a list response: the page's items under `member` (the name
/// each list had before it was paged, e.g. `bookings`) and `next_cursor`
/// beside them, `null` on the last page.
pub fn page_json<T: Serialize>(member: &str, list: List, page: Page<T>) -> Value {
    let next = page.next.map(|after| list.encode(&after));
    let mut body = serde_json::Map::new();
    body.insert(member.to_string(), json!(page.items));
    body.insert("next_cursor".to_string(), json!(next));
    Value::Object(body)
}

/// Longest reason accepted for a rejection or cancellation.
pub const MAX_REASON_CHARS: usize = 1000;

/// Trims an optional reason (blank means none) and bounds its length.
pub fn reason(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let reason = raw.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    Validator::new()
        .check(
            reason
                .as_ref()
                .is_none_or(|r| r.chars().count() <= MAX_REASON_CHARS),
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        )
        .finish()?;
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filter_accepts_any_case_and_refuses_unknown() {
        assert_eq!(status_filter(None).unwrap(), None);
        assert_eq!(status_filter(Some("")).unwrap(), None);
        assert_eq!(
            status_filter(Some("pending")).unwrap(),
            Some(BookingStatus::Pending)
        );
        assert_eq!(
            status_filter(Some("LOST")).unwrap_err().errors[0].field,
            "status"
        );
    }

    #[test]
    fn reason_is_trimmed_and_bounded() {
        assert_eq!(reason(Some("  ".into())).unwrap(), None);
        assert_eq!(
            reason(Some(" late ".into())).unwrap().as_deref(),
            Some("late")
        );
        assert!(reason(Some("x".repeat(MAX_REASON_CHARS + 1))).is_err());
    }
}
