# One image, one `tally` binary: the operator and the workers it renders run the same image.
# Node.js 24 runs the TypeScript sources directly (type stripping), so there is no build step.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-bookworm-slim
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
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/tally.mjs"]
CMD ["--help"]
