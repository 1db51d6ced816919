//! `blaxel-operator`: parses the command line and hands over to the library.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use blaxel_operator::cli::{Cli, Command, OperatorArgs};
use blaxel_operator::{crd, kube_client, operator, telemetry};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn Error>> = match cli.command {
        Command::Crds => print_crds(),
        Command::Plan(args) => return plan(&args).await,
        Command::Demo(args) => {
            telemetry::init_quiet();
            blaxel_operator::demo::run(args).await.map_err(Into::into)
        }
        Command::Simulate(args) => {
            telemetry::init(telemetry::LogFormat::Text);
            blaxel_operator::sim::run(args).await.map_err(Into::into)
        }
        Command::Run(args) => {
            let _telemetry = blaxel_operator::ops::init_telemetry(args.log_format, &args.ops);
            run(args).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `crds`: the CRD YAML on stdout. A reader that stops early (`crds | head`) has what it wanted: a
/// closed pipe ends the command quietly, as it does `cat`, rather than with a panic.
fn print_crds() -> Result<(), Box<dyn Error>> {
    let yaml = crd::to_yaml(&crd::all())?;
    let mut out = std::io::stdout().lock();
    match out.write_all(yaml.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(Into::into),
    }
}

/// `plan`: the plan on stdout, and its exit code (0 no change, 2 changes, 1 invalid or failed).
async fn plan(args: &blaxel_operator::plan::PlanArgs) -> ExitCode {
    match blaxel_operator::plan::run(args).await {
        Ok(plan) => {
            let text = blaxel_operator::plan::render::render(&plan, args.format);
            let mut out = std::io::stdout().lock();
            // A closed pipe loses the text, not the verdict.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::from(plan.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `run`: the operator against the cluster in the kubeconfig (or the in-cluster configuration).
async fn run(args: OperatorArgs) -> Result<(), Box<dyn Error>> {
    let client = kube_client::client(kube::Config::infer().await?)?;
    operator::run(args, client, operator::shutdown_signal()).await?;
    Ok(())
}
