# syntax=docker/dockerfile:1
# SmartContent API / worker image. Same image for every role:
#   API:        smartcontent serve --host 0.0.0.0 --port 8000   (the default command)
#   worker:     smartcontent worker
#   migrations: smartcontent migrate
# Needs DATABASE_URL and REDIS_URL at run time.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The project without its dev extras; README.md is part of the package metadata.
COPY pyproject.toml README.md ./
COPY app ./app
COPY schema ./schema
COPY resolvers ./resolvers
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --upgrade pip setuptools \
 && pip install . \
 && python -m compileall -q /opt/venv

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production
RUN groupadd --system --gid 10001 smartcontent \
 && useradd --system --uid 10001 --gid smartcontent --home-dir /home/smartcontent \
    --create-home --shell /usr/sbin/nologin smartcontent
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/smartcontent
USER smartcontent:smartcontent
EXPOSE 8000
# Liveness of the API process only; /readyz is for the load balancer. The worker and
# migrate containers have no HTTP port: disable this check for them (see docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["smartcontent", "serve", "--host", "0.0.0.0", "--port", "8000"]
