//! The `statuslab` binary; everything lives in the library so tests can drive it in-process.

fn main() -> std::process::ExitCode {
    statuslab::main()
}
