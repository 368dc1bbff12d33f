# The project's image. Targets:
#   app      (default) the API and workers: `node dist/src/api/server.js`, `node dist/src/worker-main.js`
#   temporal the same plus the Temporal server, its SQL tool and the Web UI server:
#            `node dist/src/temporal/server-main.js` (what `npm run temporal:server` runs)
# `.ci/run` lays out exactly what the build stage copies in a clean folder and
# runs its install and build steps there (scripts/check-image-context.js), so a
# file the build needs and the image lacks fails CI, Docker engine or not.
# scripts/compose-check.sh builds both targets on a Docker engine and runs the
# compose stack through scans and faults (docs/operations.md).

# The Go programs, built from the Go module proxy as `npm run temporal:server`
# builds them (src/temporal/server.ts): static (CGO off), the server without
# the optional gRPC modules as its Makefile does, each into its own GOBIN,
# laid out as the project's `.cache/` so the code finds them there.
FROM golang:1.25-bookworm AS temporal-binaries
ENV CGO_ENABLED=0 GOFLAGS=-mod=mod
RUN GOBIN=/out/temporal-server/v1.29.1 go install -tags disable_grpc_modules go.temporal.io/server/cmd/server@v1.29.1 \
 && GOBIN=/out/temporal-sql/v1.29.1 go install go.temporal.io/server/cmd/tools/sql@v1.29.1 \
 && GOBIN=/out/temporal-ui/v2.42.1 go install github.com/temporalio/ui-server/v2/cmd/server@v2.42.1

# Build with the dev toolchain; keep production modules only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# `npm ci` runs the package's `prepare` script, which is the build (once): the sources come first.
COPY src ./src
# npm 10 runs every install script: SKIP_FFMPEG keeps node-av's from downloading an ffmpeg binary
# (npm 11 runs none of it, by package.json's allowScripts; the prebuilt library comes from the registry).
# The benchmark (bench/) is a development tool built on the test media helpers;
# the image does not carry it, and the build compiles what is there.
# Then only this platform's binaries stay: ffprobe-static ships ffprobe for
# six platforms and the Temporal SDK's core bridge for five.
# The workflow code is bundled here, once, for WORKFLOW_BUNDLE: a worker then
# skips webpack at every start (about a second of CPU, and 60 to 90 MB it
# would otherwise keep).
RUN SKIP_FFMPEG=true npm ci && node dist/src/worker-main.js --write-bundle dist/workflow-bundle.js && npm prune --omit=dev \
 && find node_modules/ffprobe-static/bin -mindepth 2 -maxdepth 2 -type d ! -path "*/bin/linux/$(node -p process.arch)" -exec rm -rf {} + \
 && find node_modules/@temporalio/core-bridge/releases -mindepth 1 -maxdepth 1 -type d ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} + \
 && test -n "$(ls node_modules/ffprobe-static/bin/linux)" && test -n "$(ls node_modules/@temporalio/core-bridge/releases)"

FROM node:20-bookworm-slim AS app
WORKDIR /app
ENV NODE_ENV=production WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
# openssl: the compose stack's one-shot `certs` service makes Temporal's certificates with it.
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The dashboard's page, stylesheet and script, served as they are (src/api/dashboard.ts finds them here).
COPY dashboard ./dashboard
COPY scripts/make-certs.sh ./scripts/make-certs.sh
# DATA_DIR (./data: the pictures, or a SQLite library) and the certificates'
# mount point belong to the user the image runs as; a named volume mounted
# there starts with this ownership.
RUN mkdir -p /app/data/thumbnails /app/certs /app/certs-ca && chown -R node:node /app/data /app/certs /app/certs-ca
USER node
CMD ["node", "dist/src/worker-main.js"]

FROM app AS temporal
COPY --from=temporal-binaries /out ./.cache
CMD ["node", "dist/src/temporal/server-main.js"]

# The default target (`docker build .`): the API and worker image.
FROM app
