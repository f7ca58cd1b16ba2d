//! A traveler's bookings: the request rules, the price, and the mirror of
//! the status owner-service decides.

use chrono::{DateTime, NaiveDate, Utc};
use events::{BookingId, BookingRequested, BookingStatus, PropertyId, Stay, UserId};
use serde::{Deserialize, Serialize};
use service_runtime::validation::{Invalid, Validator};
use sha2::{Digest, Sha256};

use super::catalog::CatalogProperty;

/// Longest stay that can be booked.
pub const MAX_NIGHTS: i64 = 365;

/// A booking as the traveler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    /// What was booked; stored and served as flat fields.
    #[serde(flatten)]
    pub stay: Stay,
    pub property_name: String,
    pub owner_id: UserId,
    pub traveler_id: UserId,
    pub status: BookingStatus,
    pub status_reason: Option<String>,
    /// The owner-side version of the status; older updates are ignored.
    pub version: u32,
    /// Set when the traveler asked to cancel and owner-service has not answered yet.
    #[serde(with = "events::timestamp::option")]
    pub cancellation_requested_at: Option<DateTime<Utc>>,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "events::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Booking {
    /// A new PENDING booking of `stay` (priced by [`StayRequest::priced`])
    /// at `property`, for `traveler_id`.
    pub fn request(
        id: BookingId,
        stay: Stay,
        property: &CatalogProperty,
        traveler_id: UserId,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            stay,
            property_name: property.details.name.clone(),
            owner_id: property.owner_id.clone(),
            traveler_id,
            status: BookingStatus::Pending,
            status_reason: None,
            version: 0,
            cancellation_requested_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The `booking.requested` event for this booking.
    pub fn requested_event(&self) -> BookingRequested {
        BookingRequested {
            booking_id: self.id.clone(),
            stay: self.stay.clone(),
            owner_id: self.owner_id.clone(),
            traveler_id: self.traveler_id.clone(),
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// What a traveler asks to book, before it is priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StayRequest {
    /// An active property of the catalog.
    pub property_id: PropertyId,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
}

impl StayRequest {
    /// The checks that need no property, reported together; the number of
    /// nights when they pass.
    pub fn validate(&self, today: NaiveDate) -> Result<u32, Invalid> {
        let nights = (self.check_out - self.check_in).num_days();
        Validator::new()
            .check(
                !self.property_id.as_str().trim().is_empty(),
                "property_id",
                "is required",
            )
            .check(
                self.check_in >= today,
                "check_in",
                "must not be in the past",
            )
            .check(nights >= 1, "check_out", "must be after check_in")
            .check(
                nights <= MAX_NIGHTS,
                "check_out",
                format!("stays are limited to {MAX_NIGHTS} nights"),
            )
            .check(self.guests >= 1, "guests", "must be at least 1")
            .finish()?;
        Ok(nights as u32)
    }

    /// The stay of `nights` (from [`Self::validate`]) at `property`, priced
    /// from its current prices; refused when it cannot host the guests.
    pub fn priced(&self, property: &CatalogProperty, nights: u32) -> Result<Stay, Invalid> {
        let d = &property.details;
        Validator::new()
            .check(
                self.guests <= d.max_guests,
                "guests",
                format!("this property hosts at most {} guests", d.max_guests),
            )
            .finish()?;
        Ok(Stay {
            property_id: property.id.clone(),
            check_in: self.check_in,
            check_out: self.check_out,
            nights,
            guests: self.guests,
            // In minor units: nights × nightly price + cleaning + service fee.
            total_price_cents: i64::from(nights) * d.price_per_night_cents
                + d.cleaning_fee_cents
                + d.service_fee_cents,
            currency: d.currency.clone(),
        })
    }

    /// A digest of what was asked, to tell a retry (same digest) from a
    /// different request reusing an `Idempotency-Key`.
    pub fn fingerprint(&self) -> String {
        let canonical = format!(
            "{}|{}|{}|{}",
            self.property_id.as_str().trim(),
            self.check_in,
            self.check_out,
            self.guests
        );
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn request(check_in: &str, check_out: &str, guests: u32) -> StayRequest {
        StayRequest {
            property_id: "p".into(),
            check_in: d(check_in),
            check_out: d(check_out),
            guests,
        }
    }

    fn fields(err: Invalid) -> Vec<String> {
        err.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn accepts_a_future_stay_and_counts_nights() {
        assert_eq!(
            request("2030-01-01", "2030-01-04", 2)
                .validate(d("2029-12-31"))
                .unwrap(),
            3
        );
        assert_eq!(
            request("2030-01-01", "2030-01-02", 1)
                .validate(d("2030-01-01"))
                .unwrap(),
            1,
            "today is allowed"
        );
    }

    #[test]
    fn refuses_past_reversed_long_and_empty_stays() {
        let today = d("2030-01-10");
        assert_eq!(
            fields(
                request("2030-01-09", "2030-01-12", 1)
                    .validate(today)
                    .unwrap_err()
            ),
            ["check_in"]
        );
        assert_eq!(
            fields(
                request("2030-02-01", "2030-02-01", 1)
                    .validate(today)
                    .unwrap_err()
            ),
            ["check_out"]
        );
        assert_eq!(
            fields(
                request("2030-02-01", "2030-01-20", 1)
                    .validate(today)
                    .unwrap_err()
            ),
            ["check_out"]
        );
        assert_eq!(
            fields(
                request("2030-02-01", "2031-02-02", 1)
                    .validate(today)
                    .unwrap_err()
            ),
            ["check_out"]
        );
        assert!(
            request("2030-02-01", "2031-02-01", 1)
                .validate(today)
                .is_ok(),
            "365 nights is the limit"
        );
        assert_eq!(
            fields(
                request("2030-02-01", "2030-02-03", 0)
                    .validate(today)
                    .unwrap_err()
            ),
            ["guests"]
        );
    }

    #[test]
    fn fingerprint_ignores_nothing_that_matters() {
        let a = request("2030-01-01", "2030-01-04", 2);
        assert_eq!(
            a.fingerprint(),
            request("2030-01-01", "2030-01-04", 2).fingerprint()
        );
        assert_ne!(
            a.fingerprint(),
            request("2030-01-01", "2030-01-04", 3).fingerprint()
        );
    }
}
