//! Builds the GNU make plugin (`make-plugin/*.c`) into one shared object that the
//! binary embeds, so an installed makescope needs nothing beside itself.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// How every C part is compiled.
const C_FLAGS: &[&str] = &[
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-std=gnu11",
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let plugin = out.join("makescope.so");
    let mut sources: Vec<PathBuf> = std::fs::read_dir("make-plugin")
        .expect("make-plugin/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    println!("cargo:rerun-if-changed=make-plugin");
    println!("cargo:rerun-if-changed=src/protocol.h");
    println!("cargo:rerun-if-changed=src/trace/ring.h");
    println!("cargo:rerun-if-changed=src/trace/pathsearch.h");
    println!("cargo:rerun-if-changed=src/trace/fastpath.h");
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut flags = vec![format!("-DMAKESCOPE_LIBPYTHON=\"{}\"", libpython())];
    flags.extend(python_includes());
    shared_object(&cc, "the make plugin", &plugin, &sources, &flags, &["-ldl"]);
    println!("cargo:rustc-env=MAKESCOPE_PLUGIN_SO={}", plugin.display());
    build_shim(&cc, &out);
    build_preload(&cc, &out);
}

/// The tracer's in-process fast path (`src/trace/preload.c`): a small shared object
/// preloaded into traced commands' dynamically linked programs.
fn build_preload(cc: &str, out: &std::path::Path) {
    let so = out.join("makescope-preload.so");
    println!("cargo:rerun-if-changed=src/trace/preload.c");
    let source = PathBuf::from("src/trace/preload.c");
    shared_object(cc, "the preload helper", &so, &[source], &[], &[]);
    println!("cargo:rustc-env=MAKESCOPE_PRELOAD_SO={}", so.display());
}

/// Compile `sources` into the shared object `output`, or fail the build saying `what`.
fn shared_object(
    cc: &str,
    what: &str,
    output: &std::path::Path,
    sources: &[PathBuf],
    flags: &[String],
    libs: &[&str],
) {
    let status = Command::new(cc)
        .args(["-shared", "-fPIC"])
        .args(C_FLAGS)
        .args(flags)
        .arg("-o")
        .arg(output)
        .args(sources)
        .args(libs)
        .status()
        .unwrap_or_else(|e| panic!("running {cc} to build {what}: {e}"));
    assert!(status.success(), "building {what} failed");
}

/// The shim runs once per recipe line, so its start-up is paid per line. Linked
/// statically it starts in a fraction of the time a dynamically linked program needs
/// here; linked statically against musl, faster still: glibc's start-up (static or not)
/// probes the CPU's caches with dozens of CPUID instructions, each a VM exit on a
/// virtual machine (measured: shim + /bin/true 1.45 ms of CPU with static glibc, 0.85 ms
/// with static musl; /bin/true alone 0.55 ms). Preference: musl-gcc (musl-tools), then
/// static glibc (libc6-dev), then dynamic.
fn build_shim(cc: &str, out: &std::path::Path) {
    let shim = out.join("makescope-shim");
    // The directory: shim.c and the headers beside it (line.h).
    println!("cargo:rerun-if-changed=src/shim");
    let build = |compiler: &str, extra: &[&str]| {
        Command::new(compiler)
            .args(C_FLAGS)
            .args(extra)
            .arg("-o")
            .arg(&shim)
            .arg("src/shim/shim.c")
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let musl = kernel_headers(out).is_some_and(|headers| {
        build(
            "musl-gcc",
            &["-static", "-isystem", &headers.display().to_string()],
        )
    });
    if !musl && !build(cc, &["-static"]) {
        println!("cargo:warning=no static libc (libc6-dev): the shim is linked dynamically and costs more per command");
        assert!(build(cc, &[]), "building the shim failed");
    }
    println!("cargo:rustc-env=MAKESCOPE_SHIM_BIN={}", shim.display());
}

/// musl-gcc does not see the kernel's headers (`linux/`, `asm/`, `asm-generic/`) next to
/// glibc's: a directory with just those, for `-isystem`.
fn kernel_headers(out: &std::path::Path) -> Option<PathBuf> {
    let asm = ["/usr/include/x86_64-linux-gnu/asm", "/usr/include/asm"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.is_dir())?;
    let dir = out.join("kernel-headers");
    std::fs::create_dir_all(&dir).ok()?;
    for (name, target) in [
        ("linux", std::path::Path::new("/usr/include/linux")),
        ("asm", asm),
        (
            "asm-generic",
            std::path::Path::new("/usr/include/asm-generic"),
        ),
    ] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).ok()?;
    }
    Some(dir)
}

/// The libpython that `$(python …)` loads on first use (dlopen, so make processes that
/// never call it pay nothing).
fn libpython() -> String {
    python_config(
        "import sysconfig, os; print(os.path.join(sysconfig.get_config_var('LIBDIR'), sysconfig.get_config_var('LDLIBRARY')))",
    )
    .unwrap_or_else(|| "libpython3.so".into())
}

fn python_includes() -> Vec<String> {
    python_config("import sysconfig; print(sysconfig.get_paths()['include'])")
        .map(|dir| vec![format!("-I{dir}")])
        .unwrap_or_default()
}

fn python_config(code: &str) -> Option<String> {
    let python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(python).args(["-c", code]).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
