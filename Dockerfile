# uraiden's image. Build from the repository root: docker build .
# (envoy/docker-compose.yaml does).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo stays on: go-ethereum's libsecp256k1 recovers signatures four times faster.
# vtprotobuf: go-control-plane's generated marshaller, which checkcodec encodes answers with.
RUN go build -trimpath -tags vtprotobuf -o /out/uraiden ./cmd/uraiden

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/uraiden --create-home uraiden
COPY --from=build /out/uraiden /usr/local/bin/uraiden
COPY config.yaml prices.yaml /etc/uraiden/
USER uraiden
WORKDIR /var/lib/uraiden
ENTRYPOINT ["uraiden"]
CMD ["serve", "--config", "/etc/uraiden/config.yaml"]
