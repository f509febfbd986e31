# syntax=docker/dockerfile:1

# The wordcount example (examples/wordcount) as a container image; see
# docker-compose.yml for three instances of it on Apache Kafka.
#
#   docker build -t kstreams-wordcount .
#
# deploy/compose_test.go checks this file: the build stage's Go is go.mod's
# go directive, it only runs go commands, and the runtime stage runs the
# binary it built as a non-root user.

# Build stage: the Go version of go.mod's go directive.
FROM golang:1.26 AS build
WORKDIR /src
# The modules first, in their own layer: editing the source does not
# download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: a static binary (Pebble and franz-go are pure Go), so the
# runtime image needs no C library.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/wordcount ./examples/wordcount

# Runtime stage: no shell, no package manager, only CA certificates, time
# zone data and a passwd file with the non-root user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wordcount /usr/local/bin/wordcount
USER 65532:65532
# WORKDIR after USER: BuildKit creates the directory owned by that user, and
# a named volume mounted on it starts with that ownership, so an instance
# run with -state-dir /var/lib/wordcount can write its state there.
WORKDIR /var/lib/wordcount
ENTRYPOINT ["/usr/local/bin/wordcount"]
