//! What the wire-format test binaries share.

use chrono::{DateTime, Days, NaiveDate, Utc};
use events::*;

/// A pending request of booking `b-1` by traveler `t-1` for three nights
/// of property `p-1` (owner `o-1`) for two guests from `check_in`: the
/// booking request the wire-format tests encode, built in one place so
/// that they all encode a request the services could have written.
pub fn pending_request(
    check_in: NaiveDate,
    total_price_cents: i64,
    currency: &str,
    created_at: DateTime<Utc>,
) -> BookingRequestEvent {
    BookingRequestEvent::Requested(BookingRequested {
        booking_id: "b-1".into(),
        stay: Stay {
            property_id: "p-1".into(),
            check_in,
            check_out: check_in + Days::new(3),
            nights: 3,
            guests: 2,
            total_price_cents,
            currency: currency.into(),
        },
        owner_id: "o-1".into(),
        traveler_id: "t-1".into(),
        status: BookingStatus::Pending,
        created_at,
    })
}
