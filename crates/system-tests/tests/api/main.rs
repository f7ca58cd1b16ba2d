//! The public HTTP contract of both services, checked the way an external
//! client sees it: status codes, problem documents, response shapes,
//! authorization, idempotency and the asynchronous booking flows.
//!
//! Everything runs against `System::embedded()` (both services in this
//! process on an in-memory bus), so no external servers are needed.
//!
//! One module per part of the contract; [`endpoints`] is the one table of
//! every endpoint that the tests iterating over endpoints share.

#[path = "../support/mod.rs"]
mod support;

mod client;
mod endpoints;
mod helpers;
mod tokens;

mod authorization;
mod bookings;
mod catalog;
mod decisions;
mod health;
mod identity;
mod limits;
mod paging;
mod properties;
mod protocol_errors;
mod robustness;
