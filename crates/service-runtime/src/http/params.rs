//! Request parameters both services parse the same way.

use events::BookingStatus;
use serde::Deserialize;
use utoipa::IntoParams;

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

/// `?status=`, which both services' booking lists take (extract it with
/// its own [`super::ApiQuery`], and read it with [`status_filter`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusParam {
    /// Only bookings in this status: `PENDING`, `ACCEPTED`, `REJECTED` or
    /// `CANCELLED`, in any case; absent or empty: all.
    #[param(
        pattern = "^\\s*(|[Pp][Ee][Nn][Dd][Ii][Nn][Gg]|[Aa][Cc][Cc][Ee][Pp][Tt][Ee][Dd]|[Rr][Ee][Jj][Ee][Cc][Tt][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ll][Ee][Dd])\\s*$",
        example = "PENDING"
    )]
    pub status: Option<String>,
}

/// `?limit=&cursor=`, which every list endpoint takes beside its filters
/// (extract it with its own [`super::ApiQuery`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return: 1 to 200, default 50. Read as text here so
    /// that a bad value gets a 400 naming `limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200, example = 20)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; absent for the first page.
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

/// Where the page after `page` starts: the `next_cursor` of a list
/// response, `null` on the last page. Each list response has the page's
/// items under the name the list had before it was paged (e.g. `bookings`)
/// and `next_cursor` beside them.
pub fn next_cursor<T>(list: List, page: &Page<T>) -> Option<String> {
    page.next.as_ref().map(|after| list.encode(after))
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
