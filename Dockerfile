FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY views ./views
COPY public ./public
COPY tsconfig.json ./
USER node
EXPOSE 3000
CMD ["npx", "tsx", "src/main.ts"]
