//! `rtrouter plugin new NAME`: a plugin crate that builds anywhere. The SDK's sources are
//! written next to it (they are compiled into this binary), so the crate needs neither this
//! repository nor a registry: `cargo build --release --target wasm32-unknown-unknown`.

use std::io;
use std::path::{Path, PathBuf};

/// The SDK, as it is in this repository when rtrouter was built.
const SDK: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("src/abi.rs", include_str!("../../../sdk/src/abi.rs")),
    ("src/host.rs", include_str!("../../../sdk/src/host.rs")),
    ("src/packet.rs", include_str!("../../../sdk/src/packet.rs")),
    ("src/rt.rs", include_str!("../../../sdk/src/rt.rs")),
    ("src/testing.rs", include_str!("../../../sdk/src/testing.rs")),
    ("ABI.md", include_str!("../../../sdk/ABI.md")),
    ("rtrouter.h", include_str!("../../../sdk/rtrouter.h")),
];

/// The template plugin's code.
const TEMPLATE: &str = include_str!("../../../plugins/template/src/lib.rs");

const SDK_MANIFEST: &str = r#"[package]
name = "rtrouter-sdk"
description = "Write rtrouter match and target plugins in Rust, compiled to WebAssembly"
version = "VERSION"
edition = "2021"
license = "MIT OR Apache-2.0"
"#;

const MANIFEST: &str = r#"# A wasm plugin for rtrouter. Build: cargo build --release --target wasm32-unknown-unknown
# (rustup target add wasm32-unknown-unknown), then point a [[plugin]] of router.toml at
# target/wasm32-unknown-unknown/release/NAME_.wasm. Test natively: cargo test.
[package]
name = "NAME"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
rtrouter-sdk = { path = "rtrouter-sdk" }

# Its own workspace, wherever it is put.
[workspace]

[profile.release]
opt-level = "s"
lto = true
panic = "abort"
"#;

/// Whether `name` can be a crate name.
fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Writes the crate `NAME` into `dir` (which must not exist); returns its path.
pub fn create(name: &str, parent: &Path) -> io::Result<PathBuf> {
    if !valid(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}' is not a crate name (a letter, then letters, digits, `-' or `_')"),
        ));
    }
    let dir = parent.join(name);
    std::fs::create_dir(&dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let write = |rel: &str, text: &str| -> io::Result<()> {
        let p = dir.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, text).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    write(
        "Cargo.toml",
        &MANIFEST.replace("NAME_", &name.replace('-', "_")).replace("NAME", name),
    )?;
    write("src/lib.rs", TEMPLATE)?;
    write(
        "rtrouter-sdk/Cargo.toml",
        &SDK_MANIFEST.replace("VERSION", env!("CARGO_PKG_VERSION")),
    )?;
    for (rel, text) in SDK {
        write(&format!("rtrouter-sdk/{rel}"), text)?;
    }
    write(".gitignore", "/target\n")?;
    Ok(dir)
}
