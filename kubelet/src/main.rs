//! `kubelet`: flags -> Config -> kubelet::run.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "kubelet",
    about = "The node agent: runs the pods bound to this node through CRI"
)]
struct Cli {
    #[command(flatten)]
    flags: kubelet::KubeletFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let config = Cli::parse().flags.into_config()?;
    kubelet::run(config).await?;
    Ok(())
}
