//! Verify a candidate lake project (optionally against its original task) in Docker.
//!
//! ```sh
//! cargo run -p atp-verify --example verify -- CANDIDATE_DIR [ORIGINAL_DIR] [IMAGE]
//! # e.g. with the test image and the stand-in lake:
//! cargo run -p atp-verify --example verify -- fixtures/clean fixtures/original atp-test:latest
//! ```

use atp_lean::LeanProject;
use atp_verify::Verifier;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(candidate) = args.first() else {
        eprintln!("usage: verify CANDIDATE_DIR [ORIGINAL_DIR] [IMAGE]");
        std::process::exit(2);
    };
    let candidate = LeanProject::open(candidate)?;
    let original = args.get(1).map(LeanProject::open).transpose()?;
    let image = args.get(2).map(String::as_str).unwrap_or("open-atp:latest");

    let verification = Verifier::docker(image)
        .verify(&candidate, original.as_ref())
        .await?;
    println!("{}", verification.report.to_json());
    println!("verdict: {}", verification.report.reason());
    std::process::exit(if verification.report.verified { 0 } else { 1 });
}
