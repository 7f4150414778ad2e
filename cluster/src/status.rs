//! `cluster status`: which recorded processes run, and what the API says
//! about the nodes.

use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::Api;

use crate::daemon;
use crate::layout::Layout;

/// Print the status; true when everything recorded runs.
pub async fn status(data_dir: &Path) -> bool {
    let layout = Layout::new(data_dir);
    let recorded = daemon::recorded(&layout);
    if recorded.is_empty() {
        println!("No cluster runs from {}.", data_dir.display());
        return false;
    }
    let mut all = true;
    for r in &recorded {
        let alive = r.alive();
        all &= alive;
        println!(
            "  {:<32} pid {:<8} {}",
            r.name,
            r.pid,
            if alive { "running" } else { "NOT RUNNING" }
        );
    }
    print_expiries(&layout);
    match component_base::client(Some(&layout.kubeconfig()), None).await {
        Ok(client) => match Api::<Node>::all(client).list(&ListParams::default()).await {
            Ok(nodes) => {
                for n in nodes.items {
                    let ready = n
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .into_iter()
                        .find(|c| c.type_ == "Ready")
                        .map(|c| c.status)
                        .unwrap_or_else(|| "Unknown".into());
                    println!(
                        "  node {:<27} Ready={ready}",
                        n.metadata.name.unwrap_or_default()
                    );
                }
            }
            Err(e) => println!("  API not answering: {e}"),
        },
        Err(e) => println!("  no kubeconfig: {e}"),
    }
    all
}

/// When the certificates end, with a hint when that is soon.
fn print_expiries(layout: &Layout) {
    let now = jiff::Timestamp::now().as_second();
    let day = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    match crate::certs::expiries(layout) {
        Ok(crate::certs::Expiries {
            first: Some((first, end)),
            ca,
        }) => {
            let left = (end - now) / 86_400;
            let hint = if end - now < crate::certs::RENEW_WITHIN.as_secs() as i64 {
                " — renew them: cluster certs rotate"
            } else {
                ""
            };
            println!(
                "  certificates valid until {} ({left} days; first to end: {first}){hint}",
                day(end)
            );
            if let Some(ca) = ca {
                println!("  cluster CA valid until {}", day(ca));
            }
        }
        Ok(_) => println!("  no certificates in {}", layout.pki().display()),
        Err(e) => println!("  certificates: {e:#}"),
    }
}
