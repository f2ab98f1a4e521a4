# syntax=docker/dockerfile:1
# Build: docker build -t opslake:0.1.0 .
# The runtime image holds only the binary and the job files, runs as a non-root user and
# suits a read-only root file system (write to the mounted work and tmp volumes).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY build.rs build.rs
COPY samples samples
COPY src src
COPY sql sql
COPY jobs jobs
RUN touch src/main.rs src/lib.rs && cargo build --release --locked && strip target/release/opslake

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/opslake /usr/local/bin/opslake
COPY --from=build /src/jobs /etc/opslake/jobs
USER 65532:65532
WORKDIR /work
ENV OPSLAKE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/opslake"]
CMD ["--help"]
