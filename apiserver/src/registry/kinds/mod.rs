pub fn all() -> Vec<crate::registry::ResourceInfo> { Vec::new() }
pub fn human_duration(d: std::time::Duration) -> String { format!("{}s", d.as_secs()) }
