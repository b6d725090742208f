//! Gives the cdylib virglrenderer's soname, so a VMM linked against `libvirglrenderer.so.1`
//! loads it, and writes `virglrenderer.pc` next to the build outputs.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvirglrenderer.so.1");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
