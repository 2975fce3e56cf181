fn main() {
    std::process::exit(leangcn::cli::main());
}
