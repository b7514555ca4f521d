# Images of the broker and the agent, from one build:
#   docker build --target broker -t brokkr-broker .
#   docker build --target agent  -t brokkr-agent .
# Both run as a non-root user on a distroless base (glibc, CA certificates, nothing else).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p brokkr-broker -p brokkr-agent \
 && mkdir /out \
 && cp target/release/brokkr-broker target/release/brokkr-agent /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS broker
COPY --from=build /out/brokkr-broker /usr/local/bin/brokkr-broker
USER 65532:65532
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/brokkr-broker"]
CMD ["serve", "--listen-addr", "0.0.0.0:3000"]

FROM gcr.io/distroless/cc-debian12:nonroot AS agent
COPY --from=build /out/brokkr-agent /usr/local/bin/brokkr-agent
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/brokkr-agent"]
