# Happening: the `happening` binary (server, worker, migrate, reconcile, audit, healthcheck)
# on Debian 12 slim, as user 10001. The runtime layer is the binary and that user only:
# the binary answers its own HEALTHCHECK (`happening healthcheck`), and needs no
# ca-certificates (its one TLS client, the worker's webhook, carries its own roots).
#   docker build -t happening .
#   docker run -p 5000:5000 happening     # in memory; prints a token to try it with
# Set DATABASE_URL, REDIS_URL, RABBITMQ_URL for the real stores, HAPPENING_JWT_SECRET for
# tokens of your own: docker-compose.yml runs the whole stack, docs/deploy.md explains it.
# scripts/test-deploy builds and runs this image and the compose stack (scripts/test runs it).

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p happening-http --bin happening \
 && strip target/release/happening

FROM debian:bookworm-slim
# --no-log-init: no sparse lastlog/faillog entries for a high uid in the layer.
RUN groupadd --system --gid 10001 happening \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --no-log-init --shell /usr/sbin/nologin happening
COPY --from=build /src/target/release/happening /usr/local/bin/happening
USER 10001:10001
ENV PORT=5000 HAPPENING_LOG_FORMAT=json
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s CMD ["happening", "healthcheck"]
ENTRYPOINT ["happening"]
CMD ["serve"]
