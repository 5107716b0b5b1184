# mpr in a container: slim Python, Debian's ffmpeg, a non-root user, `mpr` as entry point.
# Not exercised by CI (no Docker engine on our machines); keep it simple and correct.
# pinned: a rebuild gets the same Python until this line is changed on purpose
FROM python:3.11.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 mpr
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY sql ./sql
RUN pip install --no-cache-dir . && rm -rf /app/src

USER mpr
WORKDIR /home/mpr
ENV MPR_TEMP_DIR=/tmp
ENTRYPOINT ["mpr"]
CMD ["--help"]
