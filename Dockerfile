# One image, one `tally` binary: the operator and the workers it renders run the same image.
# Node.js 24 runs the TypeScript sources directly (type stripping), so there is no build step.
# BASE_IMAGE: the official image by default; images/build.sh passes a locally built stand-in.
ARG BASE_IMAGE=node:24-bookworm-slim
FROM ${BASE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM ${BASE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY api ./api
COPY runtime ./runtime
COPY operator ./operator
COPY cli ./cli
COPY crds ./crds
# Any non-root uid works (the chart runs 65532:65532; `docker run --user 1000` too): everything
# under /app is root-owned and world-readable, and nothing is written at run time, so the root
# filesystem can be read-only.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/tally.mjs"]
CMD ["--help"]
