# syntax=docker/dockerfile:1
# Build: docker build -t git-sync-rs:0.1.0 .
# (with git and a shell for exec hooks: add --target with-git)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# libgit2, OpenSSL and zlib are built from source and linked statically.
RUN cargo build --release --locked --bin git-sync \
    && mkdir -p /volume && mkdir -m 2775 /volume/git

# For exec hooks that are shell scripts running git, as upstream's image
# allows: docker build --target with-git. Debian's git, OpenSSH client and
# shell beside the binary, with the final image's user and defaults below
# (and a passwd entry for that user, which OpenSSH's ssh needs). Security
# updates come with each rebuild, hence no pinned versions.
FROM debian:bookworm-slim AS with-git
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd -g 65533 git-sync \
    && useradd -u 65533 -g 65533 -d /tmp -M -s /bin/sh git-sync
COPY --from=build /src/target/release/git-sync /git-sync
COPY --from=build --chown=65533:65533 /volume /
ENV GITSYNC_ROOT=/git HOME=/tmp
USER 65533:65533
ENTRYPOINT ["/git-sync"]

# Final image: glibc, libgcc, CA certificates and the binary. No shell, no git.
# (The "nonroot" tag: the same files as "latest"; USER below overrides its user.)
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/git-sync /git-sync
# As upstream's image: /git is the default --root (mount the volume there),
# writable by the image's user and group (setgid, group-writable: another
# UID in group 65533 may sync there too). A GIT_SYNC_DEST=/git (the 2015
# manifest) still means that directory is served (dest mode).
COPY --from=build --chown=65533:65533 /volume /
ENV GITSYNC_ROOT=/git HOME=/tmp
# Upstream's user and group, so a volume it wrote is ours to update.
USER 65533:65533
ENTRYPOINT ["/git-sync"]
