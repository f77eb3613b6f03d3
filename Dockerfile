# The aggregator image: the package and its console script, run as a non-root user.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --create-home --uid 1000 aggregator
USER aggregator
WORKDIR /srv/aggregator
ENTRYPOINT ["aggregator", "--config", "/etc/aggregator/config.toml"]
CMD ["run"]
