//! A traveler's bookings: the request rules, the price, and the mirror of
//! the status owner-service decides.

use chrono::{DateTime, NaiveDate, Utc};
use events::{BookingRequested, BookingStatus};
use serde::{Deserialize, Serialize};
use service_runtime::validation::{Invalid, Validator};
use sha2::{Digest, Sha256};

use super::catalog::CatalogProperty;

/// Longest stay that can be booked.
pub const MAX_NIGHTS: i64 = 365;

/// A booking as the traveler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "0193a5df-2222-7000-8000-000000000002", "property_id": "0193a5d0-3333-7000-8000-000000000003",
    "property_name": "Sea View", "owner_id": "0193a5d0-1111-7000-8000-000000000001",
    "traveler_id": "0193a5d0-4444-7000-8000-000000000004", "check_in": "2027-03-01", "check_out": "2027-03-04",
    "nights": 3, "guests": 2, "total_price_cents": 42000, "currency": "EUR", "status": "PENDING",
    "status_reason": null, "version": 0, "cancellation_requested_at": null,
    "created_at": "2026-11-25T02:04:41.123Z", "updated_at": "2026-11-25T02:04:41.123Z"
}))]
pub struct Booking {
    pub id: String,
    pub property_id: String,
    pub property_name: String,
    pub owner_id: String,
    pub traveler_id: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub nights: u32,
    pub guests: u32,
    pub total_price_cents: i64,
    pub currency: String,
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
    /// The `booking.requested` event for this booking.
    pub fn requested_event(&self) -> BookingRequested {
        BookingRequested {
            booking_id: self.id.clone(),
            property_id: self.property_id.clone(),
            owner_id: self.owner_id.clone(),
            traveler_id: self.traveler_id.clone(),
            check_in: self.check_in,
            check_out: self.check_out,
            nights: self.nights,
            guests: self.guests,
            total_price_cents: self.total_price_cents,
            currency: self.currency.clone(),
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// `POST /bookings` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"property_id": "0193a5d0-3333-7000-8000-000000000003", "check_in": "2027-03-01", "check_out": "2027-03-04", "guests": 2}))]
pub struct BookingRequest {
    /// An active property of the catalog.
    pub property_id: String,
    /// Not before today.
    pub check_in: NaiveDate,
    /// 1 to 365 nights after `check_in`.
    pub check_out: NaiveDate,
    /// At least 1, at most the property's `max_guests`.
    pub guests: u32,
}

impl BookingRequest {
    /// The checks that need no property: reported together as one 400.
    pub fn validate(&self, today: NaiveDate) -> Result<u32, Invalid> {
        let nights = (self.check_out - self.check_in).num_days();
        Validator::new()
            .check(
                !self.property_id.trim().is_empty(),
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

    /// The guest count against the property's capacity.
    pub fn validate_for(&self, property: &CatalogProperty) -> Result<(), Invalid> {
        Validator::new()
            .check(
                self.guests <= property.details.max_guests,
                "guests",
                format!(
                    "this property hosts at most {} guests",
                    property.details.max_guests
                ),
            )
            .finish()
    }

    /// A digest of what was asked, to tell a retry (same digest) from a
    /// different request reusing an `Idempotency-Key`.
    pub fn fingerprint(&self) -> String {
        let canonical = format!(
            "{}|{}|{}|{}",
            self.property_id.trim(),
            self.check_in,
            self.check_out,
            self.guests
        );
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// nights × nightly price + cleaning fee + service fee, in minor units.
pub fn total_price_cents(property: &CatalogProperty, nights: u32) -> i64 {
    i64::from(nights) * property.details.price_per_night_cents
        + property.details.cleaning_fee_cents
        + property.details.service_fee_cents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn request(check_in: &str, check_out: &str, guests: u32) -> BookingRequest {
        BookingRequest {
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
