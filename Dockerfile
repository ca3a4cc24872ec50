# syntax=docker/dockerfile:1
# The operator image: TypeScript compiled to dist/ in a build stage, production dependencies only,
# and a runtime that holds the Node.js 24 binary, the C and C++ libraries it links, the operator and
# nothing else: no shell, no package manager, no npm. Runs as UID/GID 65532 with a read-only root
# filesystem. Node runs as PID 1 and the operator handles SIGTERM and SIGINT itself (it starts no
# child processes, so there are no zombies to reap and no need for tini). A CycloneDX SBOM of the
# production dependencies ships at /app/sbom.cdx.json.
#
#   docker build -t ecr-creds-refresher:dev --build-arg VERSION=$(node -p 'require("./package.json").version') .
#
# The same bundle without a container: test/integration/production-bundle.test.ts.

ARG NODE_IMAGE=node:24-bookworm-slim
# The base under the runtime files; scratch keeps it to exactly what the operator needs.
ARG RUNTIME_IMAGE=scratch

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
# --omit=optional too: npm installs an optional peer that is also a devDependency (typescript, for
# valibot) even under --omit=dev, and no production dependency needs an optional package.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
# The SBOM of exactly this tree (CycloneDX, with versions, licences and hashes), by npm itself. It
# reads the installed tree; without the dev dependencies declared, none count as missing.
RUN npm pkg delete devDependencies \
 && npm sbom --sbom-format=cyclonedx --sbom-type=application > /sbom.cdx.json

FROM ${NODE_IMAGE} AS runtime-files
# Node.js and exactly the shared libraries the dynamic loader resolves for it, at their own paths;
# a passwd entry for 65532; a /tmp.
RUN mkdir -p /runtime/usr/local/bin /runtime/etc /runtime/tmp \
 && cp /usr/local/bin/node /runtime/usr/local/bin/node \
 && for lib in $(ldd /usr/local/bin/node | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do \
      mkdir -p "/runtime$(dirname "$lib")" && cp -L "$lib" "/runtime$lib"; \
    done \
 && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/nonexistent' > /runtime/etc/passwd \
 && echo 'nonroot:x:65532:' > /runtime/etc/group \
 && chmod 1777 /runtime/tmp

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
COPY --from=runtime-files /runtime/ /
WORKDIR /app
# Owned by root and read-only to the operator's user.
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=production-dependencies /sbom.cdx.json ./
COPY package.json ./
ENV NODE_ENV=production
USER 65532:65532
# 8080: /metrics (--metrics-addr); 8081: /healthz and /readyz (--health-addr); 9443: the Pod
# admission webhook as the chart runs it (--webhook-addr; off unless given).
EXPOSE 8080 8081 9443
# A small young generation keeps the resident set small, and a heap that grows by at most half of
# what is live after each full collection keeps the cold converge's peak from doubling when V8 sees
# a high allocation rate. V8's optimizing compilers start off: once they have run, their own code
# adds about 9 MiB to the resident set. The operator turns Maglev on at its first large batch of
# writes (src/optimizing-compiler.ts); Turbofan stays off. See bench/results.
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=4", "--heap-growing-percent=50", "--no-maglev", "--no-turbofan", "/app/dist/main.js"]
CMD ["run"]
