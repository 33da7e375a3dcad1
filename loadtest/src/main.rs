//! `ringcast-load`: command line entry point.
//!
//! `ringcast-load [OPTIONS] URL...` runs a load; `ringcast-load plot A.json
//! B.json -o out.svg` draws the latency curves of earlier runs. Exit status:
//! 0 on a completed run (even with request errors, which are reported),
//! 1 when the run could not be carried out, 2 on a command-line error.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ringcast_load::config::{Args, Config};
use ringcast_load::report::{hgrm, json, text};
use ringcast_load::{plot, run};

/// `ringcast-load plot A.json B.json -o out.svg`
#[derive(Debug, Parser)]
#[command(
    name = "ringcast-load plot",
    about = "Draw latency percentile curves of --json results as SVG"
)]
struct PlotArgs {
    /// Results files written with --json.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// SVG file to write.
    #[arg(short = 'o', long)]
    output: PathBuf,
}

fn plot_main(args: PlotArgs) -> anyhow::Result<()> {
    let mut series = Vec::new();
    for path in &args.inputs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let label = path
            .file_name()
            .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        series.push(plot::series_from_json(&label, &doc)?);
    }
    std::fs::write(&args.output, plot::render_svg(&series))
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}

fn run_main(args: Args) -> anyhow::Result<()> {
    let cfg = match Config::from_args(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("ringcast-load: {e}");
            std::process::exit(2);
        }
    };
    let json_path = cfg.json.clone();
    let hgrm_path = cfg.hgrm.clone();
    let summary = run(cfg)?;
    print!("{}", text::render(&summary));
    if let Some(path) = json_path {
        let doc = serde_json::to_string_pretty(&json::render(&summary))?;
        std::fs::write(&path, doc + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = hgrm_path {
        std::fs::write(&path, hgrm::render(&summary.stats.latency_us))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "plot") {
        argv.remove(1);
        return plot_main(PlotArgs::parse_from(argv));
    }
    run_main(Args::parse_from(argv))
}
