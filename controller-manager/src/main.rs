//! kube-controller-manager: flags -> config -> run.

use clap::Parser;
use controller_manager::Options;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let options = Options::parse();
    controller_manager::run(options.into_config()).await
}
