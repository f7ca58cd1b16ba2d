//! Events the tests publish themselves, as traveler-service would, to
//! drive a consumer past what the API can reach (a cancellation before its
//! booking, a request a dead-letter tool then replays).

use chrono::NaiveDate;
use events::{BookingRequested, BookingStatus, Stay};

/// A PENDING two-night request for two guests at `property_id` from
/// `check_in`, priced 225.00 `currency`.
pub fn two_night_request(
    booking_id: &str,
    property_id: &str,
    owner_id: &str,
    traveler_id: &str,
    check_in: NaiveDate,
    currency: &str,
) -> BookingRequested {
    BookingRequested {
        booking_id: booking_id.into(),
        stay: Stay {
            property_id: property_id.into(),
            check_in,
            check_out: check_in + chrono::Duration::days(2),
            nights: 2,
            guests: 2,
            total_price_cents: 22500,
            currency: currency.into(),
        },
        owner_id: owner_id.into(),
        traveler_id: traveler_id.into(),
        status: BookingStatus::Pending,
        created_at: events::timestamp::now(),
    }
}
