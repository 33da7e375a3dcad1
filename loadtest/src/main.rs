//! ringcast-load: an open-loop HTTP/1.1 load generator (work in progress).

fn main() {
    eprintln!("ringcast-load: not built yet");
    std::process::exit(2);
}
