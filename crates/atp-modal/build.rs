//! Compiles atp's subset of Modal's protocol with protox (no system `protoc`): client stubs for
//! atp, server stubs for the fake Modal used in tests.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/modal_proto/api.proto",
        "proto/modal_proto/task_command_router.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
