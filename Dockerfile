# syntax=docker/dockerfile:1
# statuslab in a container: built with the Rust image, run on Debian slim as a non-root user.
#
#   docker build -t statuslab .
#   docker run --rm -p 8080:8080 -v statuslab-data:/data statuslab
#   docker run --rm -p 8080:8080 statuslab serve --store memory --max-delay 30s
#
# Settings come from flags after `serve` or STATUSLAB_* variables (`-e STATUSLAB_MAX_BODY=4MiB`);
# the address and the data folder are variables, so they hold whatever the command says.

# Any toolchain at or above the workspace's rust-version (1.88).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p statuslab \
    && cp target/release/statuslab /usr/local/bin/statuslab

FROM debian:bookworm-slim
# ca-certificates: rediss:// and `statuslab probe https://…` trust the system's roots;
# curl: the health check below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin statuslab \
    && mkdir -p /data \
    && chown statuslab:statuslab /data
COPY --from=build /usr/local/bin/statuslab /usr/local/bin/statuslab
USER statuslab
WORKDIR /data
# The embedded store lives on the volume; --store memory or a redis:// URL needs none.
ENV STATUSLAB_LISTEN=0.0.0.0:8080 \
    STATUSLAB_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
# /healthz: the process answers (/readyz would also say whether the store does).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["statuslab"]
CMD ["serve"]
