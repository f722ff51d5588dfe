//! Compiles the zygote's native half (src/zygote_native.c) into a shared object that the daemon
//! embeds and hands to every zygote, which loads it into the interpreter with ctypes. It is C,
//! not Rust, because it lives inside the Python process: it has to be small, use no allocator and
//! no runtime of its own, and share nothing with the interpreter but libc.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/zygote_native.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("grpo_zygote_native.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-fPIC",
            "-shared",
            "-Wl,-z,now",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .arg("-lm")
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler {cc:?} for {src}: {e}"));
    assert!(status.success(), "{cc} failed to compile {src}");
}
