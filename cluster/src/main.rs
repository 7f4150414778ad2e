//! `cluster`: bring a whole cluster up in the background, tell its status,
//! take it down. See docs/cluster.md.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use cluster::layout::DEFAULT_DATA_DIR;
use cluster::up::{StoreKind, UpOptions, UpOutcome};

#[derive(Parser)]
#[command(
    name = "cluster",
    about = "Run a mini-kubernetes cluster on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the control plane and the nodes in the background.
    Up {
        #[arg(long, default_value_t = 1)]
        nodes: u32,
        #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
        store: StoreKind,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Stop everything `up` started and remove what the nodes left.
    Down {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Also delete the data directory (the store, images, logs).
        #[arg(long)]
        purge: bool,
    },
    /// What runs.
    Status {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Build the offline images (busybox, pause, nginx) into DIR/images,
    /// as `up` does, for nodes started by hand (docs/lab-on-vms.md).
    Images {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// The cluster's certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Issue every certificate again from the cluster CA and restart the
    /// components with theirs (pods keep running).
    Rotate {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Make a CA (if DIR has none) and every certificate and kubeconfig of
    /// a cluster on other machines (docs/lab-on-vms.md), without starting
    /// anything.
    Issue {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The control plane machine's address (the apiserver's URL and
        /// serving certificate).
        #[arg(long)]
        apiserver_address: std::net::IpAddr,
        /// A node as NAME=ADDRESS; repeat for each node.
        #[arg(long = "node", value_parser = parse_node, required = true)]
        nodes: Vec<(String, std::net::IpAddr)>,
    },
}

fn parse_node(s: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, ip) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: want NAME=ADDRESS"))?;
    let ip = ip.parse().map_err(|e| format!("{ip:?}: {e}"))?;
    let name = name.to_lowercase();
    // A DNS label, as a kubelet's --hostname-override must be: it becomes a
    // certificate name, file names and YAML.
    let label = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !label {
        return Err(format!(
            "{name:?}: a node name must be a DNS label (a-z, 0-9 and '-', at most 63)"
        ));
    }
    Ok((name, ip))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up {
            nodes,
            store,
            data_dir,
        } => {
            println!("Bringing a cluster up in {} ...", data_dir.display());
            cluster::up::up(&UpOptions {
                nodes,
                store,
                data_dir,
            })
            .await
            .map(|_: UpOutcome| true)
        }
        Command::Down { data_dir, purge } => cluster::down::down(&data_dir, purge).map(|()| true),
        Command::Status { data_dir } => Ok(cluster::status::status(&data_dir).await),
        Command::Images { data_dir } => {
            let dir = cluster::layout::Layout::new(data_dir).images();
            cluster::images::build_images(&dir)
                .map(|tarballs| {
                    for t in tarballs {
                        println!("{}", t.display());
                    }
                    true
                })
                .map_err(anyhow::Error::from)
        }
        Command::Certs {
            command: CertsCommand::Rotate { data_dir },
        } => cluster::rotate::rotate(&cluster::layout::Layout::new(data_dir))
            .await
            .map(|()| true),
        Command::Certs {
            command:
                CertsCommand::Issue {
                    data_dir,
                    apiserver_address,
                    nodes,
                },
        } => cluster::certs::issue_for_machines(
            &cluster::layout::Layout::new(data_dir),
            apiserver_address,
            &nodes,
        )
        .map(|()| true),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
