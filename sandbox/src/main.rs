fn main() {
    std::process::exit(grpo_sandbox::daemon_main(std::env::args().collect()));
}
