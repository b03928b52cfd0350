# syntax=docker/dockerfile:1
# ImTicket's image: the API, the worker and the admin CLI (the same image runs every role).
#   docker build -t imticket .
# Built with SQLX_OFFLINE=true from the committed .sqlx/ query metadata: no database at build
# time. The dependency layer is cached for as long as Cargo.toml and Cargo.lock are unchanged.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# 1. Dependencies only: the manifests with empty sources for the targets the image ships.
#    bench/Cargo.toml is there because the workspace names it; nothing of it is built.
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/
RUN mkdir -p src/bin workers \
    && echo '' > src/lib.rs \
    && for bin in src/bin/imticket-api.rs src/bin/imticket-admin.rs workers/main.rs; do \
         echo 'fn main() {}' > "$bin"; \
       done \
    && cargo build --release --locked --bin imticket-api --bin imticket-worker --bin imticket-admin \
    && rm -rf src workers
# 2. The code (migrations are compiled in; redis.conf is for the redis service, not here).
COPY .sqlx .sqlx
COPY migrations migrations
COPY src src
COPY workers workers
RUN touch src/lib.rs src/bin/imticket-api.rs src/bin/imticket-admin.rs workers/main.rs \
    && cargo build --release --locked --bin imticket-api --bin imticket-worker --bin imticket-admin \
    && mkdir /out \
    && cp target/release/imticket-api target/release/imticket-worker target/release/imticket-admin /out/

FROM debian:bookworm-slim AS runtime
# curl for the HEALTHCHECK; ca-certificates for TLS to managed databases. Not pinned (DL3008):
# bookworm's point releases replace these versions, and a pin would break the build instead of
# taking the security fix; the base image tag pins the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin imticket
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
ENV IMTICKET_HTTP_ADDR=0.0.0.0:8080 IMTICKET_WORKER_METRICS_ADDR=0.0.0.0:9100 RUST_LOG=info
EXPOSE 8080 9100
# The API's readiness (PostgreSQL and Redis reachable). Worker services override it with their
# own /health/live on 9100 (docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:8080/health/ready || exit 1"]
CMD ["imticket-api"]
