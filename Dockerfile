# (No `# syntax=` line: BuildKit's built-in Dockerfile frontend, Docker
# 20.10+, handles RUN --mount, and a build needs no registry for the frontend.)
# dashd image: three stages.
#   frontend  builds the browser dashboard (frontend/dist) with Node.
#   wheels    builds the dashd wheel and every dependency's wheel.
#   runtime   python slim with only those wheels installed, run as an
#             unprivileged user; state in the /var/lib/dashd volume.
#
#   docker build -t dashd .
#   docker run -p 8080:8080 -v dashd-state:/var/lib/dashd dashd
#
# Configuration is DASHD_* environment variables (see etc/dashd.ini for every
# key), or arguments after the image name: `docker run dashd --interval 0.5`.

ARG NODE_VERSION=22
# 3.11: the Python requirements.lock is resolved for (make lock).
ARG PYTHON_VERSION=3.11
# The public base images by default. A build without a registry passes its
# own (docs/operations.md#the-image: tests/test_image.py makes one with
# debootstrap); the python one must have `python` and `pip` on PATH.
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim
ARG PYTHON_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

FROM ${NODE_IMAGE} AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
# gcc builds dashd.wire._sendmany (the C broadcast loop, setup.py) into the
# wheel; the runtime image needs no compiler. Without it dashd falls back to
# the same loop in Python.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir --upgrade pip setuptools wheel
# The dependencies as locked (versions and hashes: requirements.lock), then dashd.
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml setup.cfg setup.py MANIFEST.in README.md ./
COPY src/ src/
COPY twisted/ twisted/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 dashd \
    && useradd --system --uid 10001 --gid dashd --home-dir /var/lib/dashd --no-create-home \
       --shell /usr/sbin/nologin dashd \
    && install -d -o dashd -g dashd -m 0750 /var/lib/dashd
# Exactly the wheels the previous stage made: hashes were checked when it
# downloaded them (a wheel built there from an sdist has no published hash),
# and `pip check` proves the set complete.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --no-deps /wheels/*.whl && pip check
COPY --from=frontend /src/frontend/dist /opt/dashd/static

ENV DASHD_LISTEN=tcp:8080 \
    DASHD_STATE_DIR=/var/lib/dashd \
    DASHD_STATIC=/opt/dashd/static \
    DASHD_LOG_FORMAT=json
VOLUME /var/lib/dashd
EXPOSE 8080
USER dashd:dashd
WORKDIR /var/lib/dashd

# Readiness, without curl: the store answers and the collector ticks.
# (If you change DASHD_LISTEN, change the port here too.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/ready', timeout=4)"]

# twistd handles SIGTERM: listeners close, clients get 1001, the store flushes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["twistd", "--nodaemon", "--pidfile=", "dashd"]
CMD []
