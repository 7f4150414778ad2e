use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let config = apiserver::Config::parse();
    apiserver::run(config).await
}
