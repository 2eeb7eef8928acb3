# syntax=docker/dockerfile:1
#
# wxtoken in a container: a static binary on a distroless base that has no
# shell and no package manager, run as an unprivileged user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t wxtoken .
#   docker run -d -p 8750:8750 -v wxtoken-data:/var/lib/wxtoken \
#     -v $PWD/wxtoken.yaml:/etc/wxtoken/wxtoken.yaml:ro -e OA_SECRET -e SHOP_BACKEND_KEY wxtoken
#
# The configuration must listen on 0.0.0.0:8750 to be reachable through the
# published port. Its data_dir (default ./data) lies in the volume, as the
# working directory is /var/lib/wxtoken.

ARG GO_VERSION=1.26.8

# The build runs on the builder's own platform and cross-compiles for the
# target's (docker buildx build --platform linux/arm64,linux/amd64 ...).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version wxtoken reports (wxtoken version, the log at start), set
# through cmd/wxtoken/version.go's variable. CGO_ENABLED=0 makes the binary
# static, so it runs on a base with no C library; -trimpath keeps the build
# machine's paths out of it.
ARG VERSION=dev
ARG TARGETOS TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/wxtoken ./cmd/wxtoken
# The data volume's mount point, created here because the final image has
# no shell to create it; owned by the user below, private to it.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wxtoken /usr/local/bin/wxtoken
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /var/lib/wxtoken
# nonroot in the distroless image; numeric so that a runtime that refuses
# root can check it without reading /etc/passwd.
USER 65532:65532
WORKDIR /var/lib/wxtoken
VOLUME /var/lib/wxtoken
EXPOSE 8750
# There is no curl here: wxtoken asks itself. /readyz answers 200 when
# every credential has a valid token or a known cause.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/wxtoken", "healthcheck", "--url", "http://127.0.0.1:8750/readyz"]
ENTRYPOINT ["/usr/local/bin/wxtoken"]
CMD ["serve", "--config", "/etc/wxtoken/wxtoken.yaml"]
