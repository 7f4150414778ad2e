//! `cluster certs rotate`: issue every serving and client certificate again
//! from the cluster's CA (the CA and the service-account key stay, so
//! existing kubeconfigs' CA data and pods' tokens stay valid), then restart
//! the components one by one so that they load theirs. Pods keep running:
//! containerd is not restarted and a restarted kubelet adopts its pods.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::certs;
use crate::daemon;
use crate::layout::Layout;
use crate::up;

/// How long a component gets to stop before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub async fn rotate(layout: &Layout) -> anyhow::Result<()> {
    if !layout.pki().join("ca.crt").exists() {
        bail!("no cluster in {} (no pki/ca.crt)", layout.dir.display());
    }
    let ca = certs::ca(layout)?;
    let names = node_names(layout)?;
    let count = u32::try_from(names.len()).context("node count")?;
    let nodes = up::node_plans(&layout.dir, count);
    let mut planned: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    planned.sort();
    if planned != names {
        bail!(
            "the nodes in {} ({}) are not the ones this machine would make ({}); not rotating",
            layout.nodes().display(),
            names.join(", "),
            planned.join(", ")
        );
    }
    certs::issue_all(
        layout,
        &ca,
        &up::apiserver_url(),
        &up::apiserver_ips(),
        &up::node_certs(&nodes),
    )?;
    println!(
        "Issued new certificates (valid {} days) for kube-apiserver, the admin and {} components.",
        certs::CERT_VALIDITY.as_secs() / 86_400,
        certs::component_identities(&names).len()
    );

    // The apiserver first, so that the others reconnect to its new
    // certificate; node runtimes and etcd have nothing to reload.
    let mut restartable: Vec<daemon::Recorded> = daemon::recorded(layout)
        .into_iter()
        .filter(|r| r.launch.is_some() && r.name != "etcd")
        .collect();
    restartable.sort_by_key(|r| r.name != "kube-apiserver");
    let mut failed = Vec::new();
    for r in &restartable {
        if !r.alive() {
            println!(
                "  {} is not running; it gets its certificate when started",
                r.name
            );
            continue;
        }
        daemon::stop(layout, r, STOP_GRACE);
        if let Err(e) = daemon::respawn(layout, r) {
            // Keep its record (the PID is dead now), so that `cluster up`
            // starts it again the same way.
            let _ = daemon::record(layout, r);
            println!("  could not restart {}: {e}", r.name);
            failed.push(r.name.clone());
            continue;
        }
        println!("  restarted {}", r.name);
        if r.name == "kube-apiserver" {
            let client = component_base::client(Some(&layout.kubeconfig()), None).await?;
            up::wait_api(&client, &layout.log("kube-apiserver")).await?;
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} did not restart (see their logs in {}); `cluster up --data-dir {}` starts them again",
            failed.join(", "),
            layout.logs().display(),
            layout.dir.display()
        );
    }
    println!(
        "Done: {} has the new admin credentials.",
        layout.kubeconfig().display()
    );
    Ok(())
}

/// The cluster's nodes: one directory each under `DIR/nodes`.
fn node_names(layout: &Layout) -> anyhow::Result<Vec<String>> {
    let dir = layout.nodes();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
