//! The stay a booking is for: one definition for the `booking.requested`
//! event and both services' bookings, each flattening it, so the wire and
//! the stored documents keep their flat fields.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::PropertyId;

/// Which property, which nights, how many guests, and what it costs. Fixed
/// when the traveler books: a later change of the property's prices does
/// not change a booking's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Stay {
    pub property_id: PropertyId,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub nights: u32,
    pub guests: u32,
    pub total_price_cents: i64,
    pub currency: String,
}

impl Stay {
    /// Whether two stays share at least one night (check-out day is free).
    pub fn overlaps(&self, other: &Stay) -> bool {
        self.check_in < other.check_out && other.check_in < self.check_out
    }
}
