use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let config = apiserver::Config::parse();
    apiserver::run(config).await
}
