fn main() {
    if let Err(e) = shuiwu::cli::run() {
        eprintln!("shuiwu: {e}");
        std::process::exit(1);
    }
}
