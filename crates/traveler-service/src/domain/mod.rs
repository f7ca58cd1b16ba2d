//! traveler-service's rules, free of HTTP and database types.

pub mod booking;
pub mod catalog;
