# Happening: the `happening` binary (server, worker, migrate, reconcile, audit) in a small
# runtime image. Build: docker build -t happening .   Run: docker run -p 5000:5000 happening
# (in-memory stores; set DATABASE_URL, REDIS_URL, RABBITMQ_URL for the real ones).

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p happening-http --bin happening \
 && strip target/release/happening

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home happening
COPY --from=build /src/target/release/happening /usr/local/bin/happening
USER happening
ENV PORT=5000 HAPPENING_LOG_FORMAT=json
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:5000/healthz || exit 1
ENTRYPOINT ["happening"]
CMD ["serve"]
