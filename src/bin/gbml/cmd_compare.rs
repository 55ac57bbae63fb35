//! `gbml compare`: check another implementation's outputs against ours (`run`), or write a
//! conformance pack (`export`). See `docs/compare.md` and `docs/FORMAT.md`.
//!
//! Exit codes of `run`: 0 every manifest passes; 1 at least one mismatch; 2 unusable input
//! (malformed manifest or `.npy`, wrong shapes); 3/4 numerical or I/O failure of our side.
use gbml_testbed::io::compare::{compare_manifest, find_manifests};
use gbml_testbed::io::export::export_pack;
use gbml_testbed::io::tolerance::ToleranceTable;
use gbml_testbed::Result;
use std::path::PathBuf;

/// Arguments of `gbml compare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Compare candidate outputs: each path is a manifest.json or a directory searched for them.
    Run {
        /// Manifest files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Per-implementation tolerance overrides (TOML; see docs/compare.md).
        #[arg(long)]
        tolerances: Option<PathBuf>,
        /// Print the reports as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a conformance pack (inputs + certified outputs) to a directory.
    Export {
        /// Output directory (created if needed).
        dir: PathBuf,
    },
}

/// Run the command; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    match args.cmd {
        Sub::Run {
            paths,
            tolerances,
            json,
        } => {
            let tols = match tolerances {
                Some(p) => ToleranceTable::load(&p)?,
                None => ToleranceTable::defaults(),
            };
            let mut manifests = Vec::new();
            for p in &paths {
                manifests.extend(find_manifests(p)?);
            }
            let mut code = 0;
            let mut reports = Vec::new();
            for m in &manifests {
                match compare_manifest(m, &tols) {
                    Ok(r) => {
                        if !json {
                            print!("{r}");
                        }
                        code = code.max(r.exit_code());
                        reports.push(serde_json::to_value(&r).expect("report serialises"));
                    }
                    Err(e) => {
                        eprintln!("gbml: error: {}: {e}", m.display());
                        if json {
                            reports.push(serde_json::json!({
                                "manifest": m.display().to_string(),
                                "error": e.to_string(),
                                "exit_code": e.exit_code(),
                            }));
                        }
                        code = code.max(e.exit_code());
                    }
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reports).expect("reports serialise")
                );
            } else if manifests.len() > 1 {
                let pass = reports
                    .iter()
                    .filter(|r| r.get("verdict").and_then(|v| v.as_str()) == Some("pass"))
                    .count();
                println!("{pass}/{} manifests pass", manifests.len());
            }
            Ok(code)
        }
        Sub::Export { dir } => {
            let index = export_pack(&dir)?;
            println!(
                "wrote conformance pack with {} cases to {}",
                index.len(),
                dir.display()
            );
            Ok(0)
        }
    }
}
