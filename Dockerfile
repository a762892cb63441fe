# check=skip=InvalidDefaultArgInFrom
# (That check warns because SERVICE has no default. On purpose: a build that does not name its
# service must fail, at `FROM ${SERVICE}`.)
#
# The one Dockerfile of the five service images; the build argument SERVICE picks the image:
#   docker build --build-arg SERVICE=recognizer .     (docker-compose.yml passes it per service)
# SERVICE names the stage below that the image starts from, and with it the module that runs
# (services.<SERVICE>) and, by default, the pyproject extra installed; EXTRAS overrides that
# (several, comma-separated: --build-arg EXTRAS=api,capture).
#
# Stages:
#   base      the slim Python image, its environment and the service user
#   faces     base + dlib and the face_recognition models, for the images that find and name
#             faces: recognizer and api (both use the face engine in services/faces/)
#   capture, recognizer, recorder, api, web
#             per service: base or faces, the entry point, a port, a directory (no packages)
#   service   the last stage, FROM ${SERVICE}: that service's dependencies, then the code
# BuildKit builds only the stages the chosen service needs (capture, recorder and web never
# build faces), and the images share layers: base all five, faces recognizer and api.
ARG SERVICE

FROM python:3.11-slim-bookworm AS base

# No apt-get layer: ldd on the pinned wheels (opencv-python-headless, dlib-bin, numpy,
# cryptography) shows they bundle their own libraries and need only libc, libstdc++, libgcc_s
# and zlib, all already in the slim image. Should a system library ever be needed, install it
# with `apt-get install --no-install-recommends` so Debian's "recommended" extras stay out.

# PYTHONUNBUFFERED: log lines reach `docker compose logs` at once, not when a buffer fills.
# PYTHONDONTWRITEBYTECODE: the code is read-only to the service user, so no .pyc is written.
# PYTHONPATH: the code runs from /app/services (copied, not pip-installed: see below).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid: files it writes on volumes keep one owner across rebuilds.
RUN useradd --no-log-init --system --uid 10001 --user-group --create-home attendance

WORKDIR /app

# Every version installed in any stage is pinned by constraints.txt. It comes alone here, so
# that editing pyproject.toml (a ruff setting, a new dependency) does not reinstall dlib.
COPY constraints.txt ./


FROM base AS faces

# The face libraries, in a layer of their own that recognizer and api share (dlib and the
# models are most of their size). face_recognition's metadata asks for `dlib`, a long source
# build; dlib-bin is the same library prebuilt, so face_recognition itself goes in without its
# dependencies, as in the Makefile. setuptools<81 keeps pkg_resources for
# face_recognition_models. (The recognizer extra, which the api extra includes, lists the same
# packages, so the install in the last stage finds them present.)
RUN pip install --no-cache-dir -c constraints.txt dlib-bin face-recognition-models "setuptools<81" \
    && pip install --no-cache-dir -c constraints.txt --no-deps face-recognition


# One stage per service: what its image starts from and how it runs. Metadata only (and
# recorder's directory), so they cost nothing; the last stage inherits all of it.
FROM base AS capture
# Reads a webcam, an RTSP/HTTP stream, a video file or an image folder with OpenCV and
# publishes JPEG frames.
ENTRYPOINT ["python", "-m", "services.capture"]

FROM faces AS recognizer
# Finds and names faces. Run about one replica per core.
ENTRYPOINT ["python", "-m", "services.recognizer"]

FROM base AS recorder
# Identity events -> attendance rows in MySQL and the CSV. /data is the CSV's directory: a
# named volume mounted there starts as a copy of it, owner included, so the service user can
# write to a fresh volume.
RUN mkdir /data && chown 10001:10001 /data
ENTRYPOINT ["python", "-m", "services.recorder"]

FROM faces AS api
# The FastAPI REST API. It analyses enrollment photos, hence faces.
EXPOSE 8000
ENTRYPOINT ["python", "-m", "services.api"]

FROM base AS web
# The Flask dashboard under waitress.
EXPOSE 8080
ENTRYPOINT ["python", "-m", "services.web"]


# The image itself: the chosen service's stage, plus its dependencies and the code.
FROM ${SERVICE} AS service
ARG SERVICE
ARG EXTRAS=${SERVICE}
# Already /app (from base); said again so this stage reads on its own.
WORKDIR /app

# Dependencies before code, so editing services/ reuses this (slow) layer; it is rebuilt only
# when pyproject.toml or constraints.txt change. pip installs the project with the EXTRAS,
# every version pinned by constraints.txt; without services/ in the build yet, the project
# itself installs empty and is uninstalled again, leaving its dependencies (and its build
# leftovers are removed: on PYTHONPATH they would still look installed).
COPY pyproject.toml ./
RUN pip install --no-cache-dir -c constraints.txt ".[${EXTRAS}]" \
    && pip uninstall --yes attendance \
    && rm -rf build attendance.egg-info

# The schema migrations (run by compose's migrate service), then all of services/, shared
# libraries included (services/common, services/faces).
COPY db/migrations/ db/migrations/
COPY services/ services/

USER 10001:10001
# Every service stops cleanly on SIGTERM (finishes or requeues the message in hand).
STOPSIGNAL SIGTERM
