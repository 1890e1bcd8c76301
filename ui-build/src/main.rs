//! Builds the visualizer: compiles `runekernel-ui` to
//! `wasm32-unknown-unknown` and runs wasm-bindgen on it, writing
//! `runekernel_ui.js` and `runekernel_ui_bg.wasm` where the `runekernel`
//! crate embeds them (`runekernel/src/admin/ui/`).
//!
//! ```text
//! rustup target add wasm32-unknown-unknown
//! cargo run -p runekernel-ui-build
//! ```
//! The build is reproducible: paths are remapped, so the same sources and
//! toolchain give the same bytes anywhere, and CI checks the committed
//! assets are what the sources build to.

use std::error::Error;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use wasm_bindgen_cli_support::Bindgen;

const TARGET: &str = "wasm32-unknown-unknown";
/// The workspace profile tuned for a small wasm (`[profile.ui]`).
const PROFILE: &str = "ui";

fn main() -> ExitCode {
    match build() {
        Ok(written) => {
            for (path, size) in written {
                eprintln!("wrote {} ({size} bytes)", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("runekernel-ui-build: {error}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> Result<Vec<(PathBuf, u64)>, Box<dyn Error>> {
    // Read when it runs, not when it was compiled: one build directory may
    // serve several checkouts, and the assets go to the one `cargo run`
    // was called in.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("CARGO_MANIFEST_DIR is unset: run it with `cargo run -p runekernel-ui-build`")?;
    let workspace = manifest_dir
        .parent()
        .ok_or("runekernel-ui-build is not inside the workspace")?
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    // Remapped so that no path of this machine ends up in the wasm.
    let rustflags = format!(
        "--remap-path-prefix={}=/runekernel --remap-path-prefix={}=/cargo",
        workspace.display(),
        cargo_home.display()
    );
    let status = Command::new(&cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "runekernel-ui",
            "--lib",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", rustflags)
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of runekernel-ui for {TARGET} failed ({status}); is the target installed? `rustup target add {TARGET}`"
        )
        .into());
    }
    let wasm = target_dir.join(TARGET).join(PROFILE).join("runekernel_ui.wasm");
    let out = workspace.join("runekernel/src/admin/ui");
    Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .typescript(false)
        // The glue finds the wasm beside itself (`/ui/runekernel_ui_bg.wasm`).
        .omit_default_module_path(false)
        .remove_name_section(true)
        .remove_producers_section(true)
        .generate(&out)
        .map_err(|e| format!("wasm-bindgen on {}: {e}", wasm.display()))?;
    ["runekernel_ui.js", "runekernel_ui_bg.wasm"]
        .iter()
        .map(|name| {
            let path = out.join(name);
            let size = std::fs::metadata(&path)?.len();
            Ok((path, size))
        })
        .collect()
}
