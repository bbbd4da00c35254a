//! Builds ferret and the kernel-dependent test binaries for the VM: the
//! same dynamically linked programs the host runs, optimized a little. The
//! initramfs carries the host's shared libraries for them, so a test of
//! `uprobe:libc:...` finds the same libc in the VM as on the host.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Result;

/// The packages whose tests need a kernel: the binary end to end and the
/// kernel crate.
const PACKAGES: &[&str] = &["ferret-kernel", "ferret"];

/// A profile of our own: debug assertions stay on as in `cargo test`, but
/// optimized, because under emulation unoptimized code is the bottleneck
/// (parsing kernel BTF alone takes seconds per ferret run).
const PROFILE: &[&str] = &[
    "profile.vm.inherits=\"dev\"",
    "profile.vm.opt-level=1",
    "profile.vm.debug=false",
];

/// What the VM runs.
#[derive(Debug)]
pub struct Build {
    pub ferret: PathBuf,
    /// Test binaries, labelled `package/target`, in run order.
    pub tests: Vec<(String, PathBuf)>,
}

pub fn build(root: &Path) -> Result<Build> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--profile", "vm"]);
    for setting in PROFILE {
        cmd.args(["--config", setting]);
    }
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    eprintln!("vm-test: building the test binaries (profile vm)");
    let mut child = cmd.spawn().map_err(|e| format!("cargo: {e}"))?;
    let stdout = child.stdout.take().ok_or("cargo stdout")?;
    let mut ferret = None;
    let mut tests = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        let Some(artifact) = Artifact::parse(&line) else {
            continue;
        };
        if artifact.test {
            let label = format!("{}/{}", artifact.package, artifact.name);
            tests.push((label, artifact.executable));
        } else if artifact.name == "ferret" && artifact.kind == "bin" {
            ferret = Some(artifact.executable);
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the test binaries failed: {status}"));
    }
    // Kernel crate first: when its low-level tests fail, the end-to-end
    // failures that follow are consequences.
    tests.sort_by_key(|(label, _)| (!label.starts_with("ferret-kernel/"), label.clone()));
    Ok(Build {
        ferret: ferret.ok_or("cargo built no ferret binary")?,
        tests,
    })
}

/// The parts of one `compiler-artifact` message we use. Cargo's JSON is
/// one object per line; the fields read here are plain strings and
/// booleans, so scanning for them needs no JSON parser.
struct Artifact {
    /// The package's directory name (`ferret-kernel`).
    package: String,
    name: String,
    kind: String,
    test: bool,
    executable: PathBuf,
}

impl Artifact {
    fn parse(line: &str) -> Option<Artifact> {
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            return None;
        }
        let executable = string_field(line, "executable")?;
        let target = &line[line.find("\"target\":{")?..];
        let kind = target
            .split_once("\"kind\":[\"")?
            .1
            .split('"')
            .next()?
            .to_string();
        let name = string_field(target, "name")?;
        let manifest = PathBuf::from(string_field(line, "manifest_path")?);
        let package = manifest.parent()?.file_name()?.to_str()?.to_string();
        // The profile's `test` says whether this is a test harness; the
        // target's own `test` only says the target could have one.
        let profile = &line[line.find("\"profile\":{")?..];
        let test = profile[..profile.find('}')?].contains("\"test\":true");
        Some(Artifact {
            package,
            name,
            kind,
            test,
            executable: executable.into(),
        })
    }
}

/// The value of `"key":"..."` (first occurrence), without JSON escapes.
fn string_field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = json[start..].find('"')?;
    let value = &json[start..start + end];
    (!value.contains('\\')).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_from_cargo_json() {
        let test = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/ferret#0.1.0","manifest_path":"/w/crates/ferret/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"tracing","src_path":"/w/crates/ferret/tests/tracing.rs","edition":"2024","doctest":false,"test":true},"profile":{"opt_level":"1","debuginfo":0,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/w/target/x86_64-unknown-linux-gnu/vm/deps/tracing-1"],"executable":"/w/target/x86_64-unknown-linux-gnu/vm/deps/tracing-1","fresh":true}"#;
        let a = Artifact::parse(test).unwrap();
        assert_eq!(
            (a.package.as_str(), a.name.as_str(), a.kind.as_str(), a.test),
            ("ferret", "tracing", "test", true)
        );
        assert_eq!(
            a.executable,
            Path::new("/w/target/x86_64-unknown-linux-gnu/vm/deps/tracing-1")
        );
        let bin = r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/ferret/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"ferret","src_path":"/w/crates/ferret/src/main.rs","test":true},"profile":{"opt_level":"1","test":false},"executable":"/w/target/x/vm/ferret","fresh":false}"#;
        let a = Artifact::parse(bin).unwrap();
        assert_eq!(
            (a.name.as_str(), a.kind.as_str(), a.test),
            ("ferret", "bin", false)
        );
        let lib = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"ferret-kernel","test":true},"profile":{"test":false},"executable":null}"#;
        assert!(Artifact::parse(lib).is_none());
    }
}
