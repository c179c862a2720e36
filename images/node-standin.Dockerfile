# Stand-in for node:24-bookworm-slim (no registry reachable: see docs/kubernetes-testing.md), built by
# images/build.sh on its debootstrap Debian: the same layout as the official image (node in
# /usr/local/bin, npm in /usr/local/lib/node_modules, user `node` uid/gid 1000).
ARG DEBIAN_IMAGE=tally.local/debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
# The build host's CA bundle, for `npm ci` in build steps behind a TLS-inspecting proxy. Node adds
# it to its own roots; images built from this stand-in inherit it (the official image has none).
COPY host-ca.crt /usr/local/share/tally/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/tally/host-ca.crt
# (no chmod: the tarball's mode is kept, and a chmod here would copy the 126 MB binary into a layer)
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
CMD ["node"]
