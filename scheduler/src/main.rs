//! `kube-scheduler`: not implemented yet; see the project's open issues.

fn main() {
    eprintln!("kube-scheduler: not implemented yet");
    std::process::exit(1);
}
