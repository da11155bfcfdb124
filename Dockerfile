# syntax=docker/dockerfile:1
# Build: docker build -t git-sync-rs:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# libgit2, OpenSSL and zlib are built from source and linked statically.
RUN cargo build --release --locked --bin git-sync

# Final image: glibc, libgcc, CA certificates and the binary. No shell, no git.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/git-sync /git-sync
USER 65532:65532
ENTRYPOINT ["/git-sync"]
