//! `kubelet`: not implemented yet; see the project's open issues.

fn main() {
    eprintln!("kubelet: not implemented yet");
    std::process::exit(1);
}
