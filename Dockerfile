# syntax=docker/dockerfile:1
#
# One image recipe for both services.
#
#   docker build --target traveler-service -t booking/traveler-service:local .
#   docker build --target owner-service    -t booking/owner-service:local .
#   docker build --build-arg SERVICE=owner-service -t booking/owner-service:local .
#
# The builder stage compiles both binaries once; the two service stages only
# copy their binary, so building both images compiles the workspace once.
# crates/deploy-checks/tests/dockerfile.rs keeps this file in step with the
# workspace (every member's Cargo.toml is copied, ports match the code).

# Selects the stage that a plain `docker build .` produces (see the last stage).
ARG SERVICE=traveler-service

############################################################################
# Builder: dependencies first (cached layer), then the workspace sources.
############################################################################
FROM rust:1-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# rdkafka builds librdkafka from source with its default features: it needs a
# C/C++ toolchain, make, perl and zlib headers. Most of these are already in the
# rust image; listing them keeps the build independent of that detail.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config perl python3 zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols

WORKDIR /src

# 1. Manifests only. This layer (and the dependency build below) is reused
#    until Cargo.toml, Cargo.lock or a crate manifest changes.
COPY Cargo.toml Cargo.lock ./
COPY crates/events/Cargo.toml           crates/events/Cargo.toml
COPY crates/service-runtime/Cargo.toml  crates/service-runtime/Cargo.toml
COPY crates/traveler-service/Cargo.toml crates/traveler-service/Cargo.toml
COPY crates/owner-service/Cargo.toml    crates/owner-service/Cargo.toml
COPY crates/embedded-runner/Cargo.toml  crates/embedded-runner/Cargo.toml
COPY crates/deploy-checks/Cargo.toml    crates/deploy-checks/Cargo.toml
COPY crates/test-support/Cargo.toml     crates/test-support/Cargo.toml
COPY crates/system-tests/Cargo.toml     crates/system-tests/Cargo.toml
COPY crates/load-generator/Cargo.toml   crates/load-generator/Cargo.toml
COPY crates/bookingctl/Cargo.toml       crates/bookingctl/Cargo.toml

# 2. Stub sources so Cargo can resolve every workspace member, then compile all
#    third-party dependencies of the two services (librdkafka included).
RUN set -eux; \
    for crate in crates/*/; do \
      mkdir -p "${crate}src"; \
      printf 'fn main() {}\n' > "${crate}src/main.rs"; \
      : > "${crate}src/lib.rs"; \
    done; \
    cargo build --release --locked -p traveler-service -p owner-service; \
    rm -rf crates/*/src

# 3. The real sources. `touch` makes them newer than the stub build, so Cargo
#    recompiles the workspace crates (and only them).
COPY crates crates
RUN set -eux; \
    find crates -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p traveler-service -p owner-service -p bookingctl --bins; \
    mkdir -p /out; \
    cp target/release/traveler-service target/release/owner-service target/release/bookingctl /out/

############################################################################
# Runtime base: small Debian, CA certificates, curl for HEALTHCHECK, no root.
############################################################################
FROM debian:bookworm-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# curl is only for HEALTHCHECK: the binaries have no self-check flag.
# Package versions follow the bookworm point release of the base image
# (security updates included), so they are deliberately not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin app

# Numeric so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /

# The binary runs as PID 1 (exec form ENTRYPOINT) and handles SIGTERM itself:
# it stops accepting, drains in-flight requests, flushes the Kafka producer and
# commits offsets within SHUTDOWN_TIMEOUT_SECS (default 20).
STOPSIGNAL SIGTERM

############################################################################
# What both service images add to the runtime: the operators' tool beside
# the service, and the health check on the service's own PORT.
############################################################################
FROM runtime AS service-base
# The operators' tool, to run beside the service with its environment:
# `kubectl exec deploy/traveler-service -- bookingctl outbox status --service traveler`
# (likewise deploy/owner-service, --service owner).
COPY --from=builder /out/bookingctl /usr/local/bin/bookingctl
HEALTHCHECK --interval=10s --timeout=3s --start-period=100s --retries=3 \
  CMD ["/bin/sh", "-c", "curl -fsS -o /dev/null http://127.0.0.1:${PORT}/health"]

############################################################################
# traveler-service (HTTP 5005)
############################################################################
FROM service-base AS traveler-service
# Per stage, although inherited: hadolint checks each stage's own SHELL.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=builder /out/traveler-service /usr/local/bin/traveler-service
# Fails the build if a shared library the binary links against is missing
# here (grep without -q reads all of ldd's output, so pipefail is exact).
RUN ! ldd /usr/local/bin/traveler-service | grep 'not found'
ENV PORT=5005
EXPOSE 5005
ENTRYPOINT ["/usr/local/bin/traveler-service"]

############################################################################
# owner-service (HTTP 5002)
############################################################################
FROM service-base AS owner-service
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=builder /out/owner-service /usr/local/bin/owner-service
RUN ! ldd /usr/local/bin/owner-service | grep 'not found'
ENV PORT=5002
EXPOSE 5002
ENTRYPOINT ["/usr/local/bin/owner-service"]

############################################################################
# Default: `docker build .` builds the service named by --build-arg SERVICE.
############################################################################
FROM ${SERVICE} AS service
