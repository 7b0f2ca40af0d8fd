# ccsite gateway image: Daphne serving the ASGI app on 0.0.0.0:8000 as an unprivileged user.
# Secrets come from the environment at run time (see .env.example); nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CCSITE_DATA_DIR=/data \
    CCSITE_ENV_FILE=

WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY manage.py ./
COPY ccsite ./ccsite
COPY accounts ./accounts
COPY proxy ./proxy
COPY catalog ./catalog
COPY usage ./usage
COPY portal ./portal
COPY templates ./templates

# Admin and report assets for a front proxy that serves /static/ itself; DEBUG only for this step.
RUN DEBUG=1 python manage.py collectstatic --noinput -v 0

RUN useradd --system --uid 10001 --home-dir /app ccsite \
    && mkdir -p /data \
    && chown ccsite /data
USER 10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# Migrations run as an entrypoint step, then Daphne replaces the shell. No --http-timeout:
# it would cut long streams mid-response.
ENTRYPOINT ["sh", "-c", "python manage.py migrate --noinput -v 0 && exec \"$@\"", "--"]
CMD ["python", "-m", "ccsite.serve", "-b", "0.0.0.0", "-p", "8000", "ccsite.asgi:application"]
