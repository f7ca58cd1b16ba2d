//! owner-service's HTTP endpoints under `/api/owners`.

pub mod bookings;
pub mod properties;
pub mod property_fields;
