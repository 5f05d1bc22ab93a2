# devwire-sim as a container: a simulated device that serves a JSON script.
#
#   docker build -t devwire-sim .                       (podman: add --format docker)
#   docker build --build-arg RUN_TESTS=1 -t devwire-sim .   (runs the test suites too)
#   docker run --rm -p 5025:5025 devwire-sim            (the bundled SCPI example)
#   docker run --rm -p 5025:5025 -v ./myscripts:/scripts:ro devwire-sim \
#       --script /scripts/mydevice.json --listen 0.0.0.0:5025
#   docker run --rm --sysctl net.ipv4.ip_unprivileged_port_start=111 \
#       -p 111:111/tcp -p 111:111/udp -p 9009:9009 -p 9010:9010 \
#       -e DEVWIRE_PROBE=127.0.0.1:9009 devwire-sim \
#       --script /usr/share/devwire/examples/sg-vxi11.json \
#       --listen 0.0.0.0:9009 --abort-port 9010      (VXI-11: TCPIP::localhost::inst0::INSTR)
#
# On a machine that cannot pull debian:bookworm-slim, scripts/make-base-image.sh
# builds it locally (debootstrap) under that name. docs/docker.md has more.

# ---- build stage ------------------------------------------------------------
FROM debian:bookworm-slim AS build

# RUN_TESTS=1 builds and runs the test suites inside the build.
ARG RUN_TESTS=0
# Parallel compile jobs.
ARG JOBS=2

# Dependencies first, so that this layer is reused while the sources change.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*

COPY . /src
WORKDIR /src
# The README's build commands (tests and benchmarks only when asked for).
RUN tests=OFF; [ "$RUN_TESTS" = 1 ] && tests=ON; \
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDW_BUILD_TESTS="$tests" \
          -DDW_BUILD_BENCH=OFF \
 && cmake --build build -j"$JOBS"
RUN if [ "$RUN_TESTS" = 1 ]; then \
      cd build && ctest -j"$JOBS" --output-on-failure; \
    fi
# Stage what the runtime image needs under /staging.
RUN cmake --install build --prefix /staging/usr --strip \
 && install -d /staging/usr/share/devwire/examples \
 && cp -r sim/examples/. /staging/usr/share/devwire/examples/ \
 && if [ -d sim/schema ]; then cp -r sim/schema /staging/usr/share/devwire/schema; fi \
 && test -x /staging/usr/bin/devwire-sim

# ---- runtime stage ----------------------------------------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="devwire-sim" \
      org.opencontainers.image.description="Scriptable simulated device: serves JSON request/response scripts over TCP or Telnet"

RUN apt-get update \
 && apt-get install -y --no-install-recommends libcjson1 libtelnet2 libpcre2-8-0 libuv1 libmicrohttpd12 \
      liblua5.4-0 libtirpc3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 devwire \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent \
            --no-create-home --shell /usr/sbin/nologin devwire \
 && mkdir -p /scripts

COPY --from=build /staging/usr/bin/devwire-sim /usr/bin/devwire-sim
COPY --from=build /staging/usr/share/devwire /usr/share/devwire

USER devwire
# User scripts are mounted here: -v ./myscripts:/scripts:ro
WORKDIR /scripts
EXPOSE 5025
# A VXI-11 instrument (docs/docker.md): the portmapper, its core and abort channels.
EXPOSE 111/tcp 111/udp 9009 9010
# Where the health check asks; set it when the simulator listens elsewhere.
ENV DEVWIRE_PROBE=127.0.0.1:5025
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD devwire-sim --probe "$DEVWIRE_PROBE" --timeout 2000
ENTRYPOINT ["devwire-sim"]
CMD ["--script", "/usr/share/devwire/examples/sg.json", "--listen", "0.0.0.0:5025"]
