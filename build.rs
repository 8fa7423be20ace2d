//! Generates the GoBGP gRPC client (src/evpn/gobgp.rs includes it) from
//! the .proto files vendored under proto/gobgp (GoBGP v3.10.0; MIT
//! notices in the files, the GoBGP repository Apache-2.0: proto/gobgp/LICENSE).
//! Needs `protoc` (Debian: protobuf-compiler). The google/protobuf
//! well-known types the files import are vendored too (proto/google, from
//! protobuf 3.21, BSD-3-Clause notices in the files): Debian ships them in
//! libprotobuf-dev, not with protoc, and a build must not depend on which
//! of the two a machine happens to have. The code goes to OUT_DIR, never
//! into src/.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rustc-link-arg-bin=vswitchd=-Wl,-z,max-page-size=0x200000");
    println!("cargo:rustc-link-arg-bin=vswitchd=-Wl,-z,separate-loadable-segments");
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_protos(
            &[
                "proto/gobgp/gobgp.proto",
                "proto/gobgp/attribute.proto",
                "proto/gobgp/capability.proto",
            ],
            &["proto/gobgp", "proto"],
        )?;
    Ok(())
}
