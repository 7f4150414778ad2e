//! `kubectl`: not implemented yet; see the project's open issues.

fn main() {
    eprintln!("kubectl: not implemented yet");
    std::process::exit(1);
}
