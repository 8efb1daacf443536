# fleetcore's container image: every binary, built on Debian 12 from Debian's packages,
# run as an unprivileged user on a slim runtime. Secrets (database password, admin token,
# CA key) are mounted at run time, never baked in. Debian's nats-server is in it too, for
# the NATS that gateway replicas share (compose and the chart run it from this image).
#
#   docker build -t fleetcore:dev .
FROM debian:12 AS build
WORKDIR /src
COPY tools/dev/install-deps.sh tools/dev/install-deps.sh
RUN tools/dev/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target fleetcore-binaries \
 && cmake --install /build --prefix /opt/fleetcore \
 && strip /opt/fleetcore/bin/*

FROM debian:12-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libabsl20220623 libgrpc++1.51 \
      libgrpc29 libprotobuf32 libpqxx-6.4 libpq5 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libspdlog1.10 libfmt9 libssl3 libre2-9 libnats3.4 \
      nats-server \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin fleetcore \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/fleetcore/ca /var/lib/fleetcore/policy
COPY --from=build /opt/fleetcore/bin/ /usr/local/bin/
COPY --from=build /opt/fleetcore/share/fleetcore/ /usr/share/fleetcore/
USER 10001:10001
# Containers log JSON lines; every service takes its settings from FLEETCORE_* variables.
ENV FLEETCORE_LOG_FORMAT=json
