//! traveler-service's HTTP endpoints under `/api/travelers`.

pub mod bookings;
pub mod catalog;
