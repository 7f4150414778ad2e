//! `cluster`: not implemented yet; see the project's open issues.

fn main() {
    eprintln!("cluster: not implemented yet");
    std::process::exit(1);
}
