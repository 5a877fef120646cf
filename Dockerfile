# micrograd-service: the `micrograd` HTTP service in a small runtime image.
#
#   docker build -t micrograd .
#   docker run --rm -p 8080:8080 micrograd
#
# Both bases are build arguments so they can come from a mirror or be made
# locally (scripts/verify-container builds this file unchanged with podman).
ARG BUILDER_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- build
FROM ${BUILDER_IMAGE} AS build

# The CMicroHTTPD system library target needs the headers and its .pc file.
# DL3008 (pin apt versions) is ignored on purpose: the base image fixes the Debian
# release, and an exact version pin breaks the build as soon as a security update
# replaces that version on the mirror.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmicrohttpd-dev libhiredis-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, in their own layer: editing sources does not re-resolve.
# (Package.resolved is used when the context has one.)
COPY Package.* ./
RUN swift package resolve

# Then the whole context (.dockerignore is a deny-list): SwiftPM rejects a manifest
# whose targets lack their directories, so every target directory (tests, benchmarks,
# fuzzers) must be here although only `micrograd` is built. Naming directories here
# broke the build when Fuzz/ was added.
COPY . ./

# Release build with the Swift runtime linked in, so the runtime image needs no
# toolchain. Resource bundles (if any target has resources) travel next to the binary.
RUN swift build -c release --product micrograd --static-swift-stdlib \
    && mkdir -p /staging \
    && bin="$(swift build -c release --show-bin-path)" \
    && cp "$bin/micrograd" /staging/ \
    && strip /staging/micrograd \
    && find "$bin" -maxdepth 1 -name '*.resources' -exec cp -R {} /staging/ \;

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE}

LABEL org.opencontainers.image.title="micrograd-service" \
      org.opencontainers.image.description="Scalar autograd over JSON expression graphs, served over HTTP"

# libmicrohttpd12 and libhiredis0.14 (the Redis store) are the only shared libraries the binary needs beyond
# libc/libstdc++; graphviz provides `dot` for the SVG renderings, fonts-dejavu-core the font the DOT names.
# DL3008: as in the build stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmicrohttpd12 libhiredis0.14 graphviz fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 micrograd \
    && useradd --uid 10001 --gid micrograd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin micrograd

COPY --from=build /staging/ /app/
# fontconfig (under `dot`) needs a writable cache directory or it complains on
# every render; /tmp is writable here and an emptyDir in deploy/.
ENV PATH=/app:$PATH \
    XDG_CACHE_HOME=/tmp/.cache

# Numeric so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 8080
# The binary is PID 1 (exec form, no shell) and drains on SIGTERM itself.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["micrograd", "healthcheck"]
ENTRYPOINT ["micrograd", "serve"]
