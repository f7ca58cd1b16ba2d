//! Deployment checks live in `tests/`; this library is intentionally empty.
