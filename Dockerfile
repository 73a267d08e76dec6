# Panoptes in Rust as a container image: a multi-stage build, the binary alone in a slim
# Debian image, run as an unprivileged user. Not built by the test suite (the machines it
# runs on cannot pull base images); build it with
#   docker build -t panoptes .
# and run it (listeners off loopback need a token; see README, "Container"):
#   docker run -p 8080:8080 -e PANOPTES__HTTP__LISTEN=0.0.0.0:8080 \
#     -e PANOPTES__HTTP__TOKEN=change-me panoptes

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin panoptes

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --home-dir /var/lib/panoptes --shell /usr/sbin/nologin panoptes \
    && install -d -o panoptes -g panoptes -m 0750 /var/lib/panoptes
COPY --from=build /src/target/release/panoptes /usr/bin/panoptes
COPY packaging/etc/panoptes.toml /etc/panoptes/panoptes.toml
COPY conf/plugins /etc/panoptes/plugins
COPY --chown=root:panoptes --chmod=0640 packaging/etc/secrets.toml /etc/panoptes/secrets.toml
USER panoptes
WORKDIR /var/lib/panoptes
VOLUME ["/var/lib/panoptes"]
EXPOSE 8080 9092
ENV PANOPTES_CONFIG=/etc/panoptes/panoptes.toml
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/usr/bin/panoptes"]
CMD ["run"]
