//! `blaxel-operator`: parses the command line and hands over to the library.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use blaxel_operator::cli::{Cli, Command};
use blaxel_operator::{crd, kube_client, operator, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Crds => crd::to_yaml(&crd::all())
            .map(|yaml| print!("{yaml}"))
            .map_err(Into::into),
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
            match kube::Config::infer().await {
                Ok(config) => match kube_client::client(config) {
                    Ok(client) => operator::run(args, client, operator::shutdown_signal())
                        .await
                        .map_err(Into::into),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e.into()),
            }
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
