# One image for web, worker and beat. The GPU worker builds the same file with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
# so that torch is a CUDA build of the same version; everything else is identical.
FROM python:3.11-slim AS base

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MODEL_DIR=/data/models

RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
# torch first, from the index that matches the worker's hardware; the pin in requirements.txt is then satisfied.
RUN pip install --index-url "$TORCH_INDEX" "torch==$(grep -E '^torch==' requirements.txt | cut -d= -f3)" \
    && pip install -r requirements.txt

COPY . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
    && useradd --create-home --uid 1000 app && mkdir -p /data/models && chown -R app /data /app
USER app

EXPOSE 8000
# gunicorn.conf.py in /app sets the app, workers (WEB_CONCURRENCY), timeout (GUNICORN_TIMEOUT), max_requests.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
