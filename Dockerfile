# The container image is not built yet. A real multi-stage image, with base images pinned by
# digest and dependencies installed from the hash-locked uv.lock, comes with its own change.
# Until then building this file fails on purpose rather than produce an unpinned image.
FROM scratch
RUN ["/bin/false"]
