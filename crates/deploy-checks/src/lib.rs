//! Deployment checks live in `tests/`; this library is intentionally empty.
//!
//! The tests validate `Dockerfile`, `docker-compose.yml` and `k8s/` against the
//! code: the environment variables the binaries read
//! (`service_runtime::config::env_spec`), their ports (`traveler_service::DEFAULTS`,
//! `owner_service::DEFAULTS`) and the topic names (`events::topics`).
//!
//! They need `kubectl`, `docker-compose`, `hadolint` and `kubernetes-validate`
//! (`scripts/install-deploy-tools.sh` installs what is missing). Without them a
//! test prints `SKIPPED` and passes, except when `CI` is set, where a missing
//! tool fails the test. See docs/operations.md, "Validating changes".
