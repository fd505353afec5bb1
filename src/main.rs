fn main() {
    std::process::exit(arbor::cli::main());
}
