//! `kube-scheduler`: flags -> Config -> scheduler::run.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let options = scheduler::Options::parse();
    scheduler::run(options.into_config()).await
}
