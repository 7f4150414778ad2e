//! `kubectl api-resources`: the server's resources, as a table or names.

use crate::cli::ApiResourcesArgs;
use crate::discovery::ResourceInfo;
use crate::error::{Error, Result};
use crate::out;
use crate::session::Session;
use crate::tabwriter::TabWriter;

pub async fn run(session: &Session, a: ApiResourcesArgs) -> Result<()> {
    let discovery = session.discovery().await?;
    let mut resources: Vec<&ResourceInfo> = discovery
        .resources
        .iter()
        .filter(|r| !r.verbs.is_empty())
        .filter(|r| a.namespaced.is_none_or(|n| r.namespaced == n))
        .filter(|r| a.api_group.as_ref().is_none_or(|g| r.group == *g))
        .filter(|r| a.verbs.iter().all(|v| r.supports(v)))
        .collect();
    // Group by API group in the server's order, then by name.
    let group_rank = |g: &str| {
        discovery
            .resources
            .iter()
            .position(|r| r.group == g)
            .unwrap_or(usize::MAX)
    };
    resources
        .sort_by(|x, y| (group_rank(&x.group), &x.plural).cmp(&(group_rank(&y.group), &y.plural)));
    let wide = match a.output.as_deref() {
        None | Some("") => false,
        Some("wide") => true,
        Some("name") => {
            let mut text = String::new();
            for r in resources {
                text.push_str(&r.resource_group());
                text.push('\n');
            }
            out::print(&text);
            return Ok(());
        }
        Some(other) => return Err(Error::msg(format!("--output {other} is not available"))),
    };
    let mut w = TabWriter::for_tables();
    if !a.no_headers {
        w.write("NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND");
        w.write(if wide { "\tVERBS\tCATEGORIES\n" } else { "\n" });
    }
    for r in resources {
        w.write(&format!(
            "{}\t{}\t{}\t{}\t{}",
            r.plural,
            r.short_names.join(","),
            r.api_version(),
            r.namespaced,
            r.kind
        ));
        if wide {
            w.write(&format!(
                "\t{}\t{}\n",
                r.verbs.join(","),
                r.categories.join(",")
            ));
        } else {
            w.write("\n");
        }
    }
    out::print(&w.take());
    Ok(())
}
