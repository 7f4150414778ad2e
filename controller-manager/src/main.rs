//! `kube-controller-manager`: not implemented yet; see the project's open issues.

fn main() {
    eprintln!("kube-controller-manager: not implemented yet");
    std::process::exit(1);
}
