# paperradar: one image for the web processes and the workers.
#   docker build -t paperradar .
#   docker run -p 8000:8000 -e PAPERRADAR_DATABASE_URL=postgresql://… paperradar
#   docker run -e PAPERRADAR_DATABASE_URL=… paperradar worker
# (docker-compose.yml runs web + workers + PostgreSQL with pgvector.)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/paperradar --shell /usr/sbin/nologin paperradar
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels paperradar[postgres] \
    && rm -rf /wheels
USER paperradar
WORKDIR /var/lib/paperradar
ENV PAPERRADAR_DATA_DIR=/var/lib/paperradar \
    PAPERRADAR_HOST=0.0.0.0 \
    PAPERRADAR_PORT=8000 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/paperradar"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
ENTRYPOINT ["paperradar"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
