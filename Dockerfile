# syntax=docker/dockerfile:1
# The operator image: TypeScript compiled to dist/ in a build stage, production dependencies only,
# on Node.js 24 slim as UID/GID 65532. Works with a read-only
# root filesystem. Node runs as PID 1 and the operator handles SIGTERM and SIGINT itself (it
# starts no child processes, so there are no zombies to reap and no need for tini).
#
#   docker build -t ecr-creds-refresher:dev --build-arg VERSION=$(node -p 'require("./package.json").version') .
#
# The same bundle without a container: test/integration/production-bundle.test.ts.

ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency would download a second Node.js; the image's is used.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ecr-creds-refresher" \
      org.opencontainers.image.description="Kubernetes operator that keeps AWS ECR image pull secrets fresh across a cluster" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
WORKDIR /app
# Owned by root and read-only to the operator's user.
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
ENV NODE_ENV=production
USER 65532:65532
# 8080: /metrics (--metrics-addr); 8081: /healthz and /readyz (--health-addr).
EXPOSE 8080 8081
# A small young generation keeps the resident set small; see bench/results.
ENTRYPOINT ["node", "--max-semi-space-size=4", "/app/dist/main.js"]
CMD ["run"]
