# tlog-monitor container image.
#
# Reproducible: one commit builds one image. Give the commit's time and identity:
#
#   docker buildx build \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" \
#     --build-arg VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' monitor/__init__.py)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE=https://github.com/OWNER/tlog-monitor \
#     --output type=docker,name=tlog-monitor:dev,rewrite-timestamp=true .
#
# The build stage installs with scripts/install-locked.sh, the procedure CI checks: uv from
# requirements/bootstrap.txt and every runtime dependency from uv.lock, all hash-checked; the
# build backend from requirements/build.txt, hash-checked too. No secret is needed to build.
#
# Run: `docker run -p 127.0.0.1:9464:9464 -v tlog-data:/var/lib/tlog-monitor tlog-monitor:dev`
# (read-only root filesystem: add --read-only; everything written is under the volume).
# deploy/README.md has the compose and Kubernetes examples.

# python:3.11-slim-bookworm, pinned by the digest of its multi-platform index. Source of the
# digest: the public repository peiyang-z6/BandStructure_AI_Project, file Dockerfile (commit
# 031f26d8efa99aa7b48789a61e4834bcc313d355), which pins the same tag to it; other public
# repositories pin it too. Check before a bump with:
#   docker buildx imagetools inspect python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
# Both stages use the same image: the virtual environment points at its interpreter.
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build

ARG SOURCE_DATE_EPOCH
ARG VERSION

WORKDIR /src
COPY pyproject.toml uv.lock README.md .gitignore ./
COPY requirements/bootstrap.txt requirements/build.txt requirements/
COPY scripts/install-locked.sh scripts/check-install.sh scripts/
COPY monitor monitor/
COPY migrations migrations/
COPY config/monitor.yaml config/monitor.example.yaml config/
COPY deploy/monitor.yaml deploy/

# The cache mount only speeds up rebuilds: every file from it is checked against its hash.
RUN --mount=type=cache,target=/root/.cache,sharing=locked \
    PYTHON=/usr/local/bin/python3 bash scripts/install-locked.sh /opt/tlog-monitor

# The checks CI runs on its own install, and a version label that matches the package.
RUN bash scripts/check-install.sh /opt/tlog-monitor \
    && if [ -n "${VERSION}" ] \
        && [ "$(/opt/tlog-monitor/bin/tlog-monitor --version)" != "tlog-monitor ${VERSION}" ]; then \
        echo "VERSION=${VERSION} is not the package's version" >&2; exit 1; \
    fi

# The user (a numeric UID, so that Kubernetes can check runAsNonRoot), the configuration and
# the data directory, made here so that the final stage needs no shell.
RUN echo 'tlog:x:10001:10001:tlog-monitor:/var/lib/tlog-monitor:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'tlog:x:10001:' >> /etc/group \
    && install -d -m 0755 /etc/tlog-monitor \
    && install -m 0644 deploy/monitor.yaml /etc/tlog-monitor/monitor.yaml \
    && install -d -m 0750 -o 10001 -g 10001 /var/lib/tlog-monitor \
    && if [ -n "${SOURCE_DATE_EPOCH}" ]; then \
        touch -d "@${SOURCE_DATE_EPOCH}" /etc/passwd /etc/group /etc/tlog-monitor \
            /etc/tlog-monitor/monitor.yaml /var/lib/tlog-monitor; \
    fi


FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

ARG SOURCE
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="tlog-monitor" \
      org.opencontainers.image.description="A monitor for Sigstore's Rekor transparency logs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY --from=build /etc/passwd /etc/group /etc/
COPY --from=build /etc/tlog-monitor /etc/tlog-monitor
COPY --from=build /opt/tlog-monitor /opt/tlog-monitor
COPY --from=build --chown=10001:10001 /var/lib/tlog-monitor /var/lib/tlog-monitor

# Bytecode was compiled at build time; a read-only root filesystem takes no more.
ENV PATH=/opt/tlog-monitor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/tlog-monitor

# Everything the monitor writes (SQLite database, TUF cache) is here; relative paths in a
# configuration resolve here too.
WORKDIR /var/lib/tlog-monitor
VOLUME ["/var/lib/tlog-monitor"]

USER 10001:10001
EXPOSE 9464

# slim has no curl: the venv's Python asks /healthz, bypassing any HTTP proxy of the
# environment (-I: nothing from the working directory or PYTHON* variables).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/tlog-monitor/bin/python", "-I", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["/opt/tlog-monitor/bin/tlog-monitor"]
CMD ["run", "--config", "/etc/tlog-monitor/monitor.yaml"]
