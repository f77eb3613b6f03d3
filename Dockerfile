# The aggregator image: the package and its console script, run as a non-root user.
# Default command: the daemon (scheduled ingest/build/send, health and unsubscribe
# endpoints on port 8000). One-off: `docker compose run --rm aggregator run`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
COPY templates ./templates
# The data and output directories exist in the image, owned by the runtime user,
# so the named volumes mounted there start out writable by it.
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 aggregator \
    && mkdir -p /etc/aggregator/data /etc/aggregator/public \
    && chown aggregator:aggregator /etc/aggregator/data /etc/aggregator/public
USER aggregator
WORKDIR /srv/aggregator
EXPOSE 8000
# SIGTERM: the daemon finishes or abandons its job and exits 0 (see README).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5)"]
ENTRYPOINT ["aggregator", "--config", "/etc/aggregator/config.toml"]
CMD ["daemon", "--host", "0.0.0.0", "--port", "8000"]
