# wxbridge in production: compiled once in the build stage, run with plain node and
# production dependencies only (no TypeScript, no tsx loader in the process).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# Memory settings (README "Production"; the benchmark's production bridges use the same,
# and test/build checks they agree): at most 2 glibc malloc arenas instead of 8 per core,
# and the node flag in CMD caps V8's young generation at 2×8 MB (about 15–25 MB less peak
# RSS under load, no measurable throughput cost).
ENV MALLOC_ARENA_MAX=2
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
USER node
EXPOSE 3000
# Operator commands from the same image: docker compose run --rm wxbridge node dist/cli.js migrate
CMD ["node", "--max-semi-space-size=8", "dist/main.js"]
