//! Helpers shared by rtrouter's end-to-end tests.

use std::path::PathBuf;

/// The workspace root (the folder with the top-level `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared/conformance/<sub>` beside the repository, or `None` (after printing one line
/// saying the tests that need it are skipped) when it is absent.
pub fn conformance_dir(sub: &str) -> Option<PathBuf> {
    let d = repo_root().join("..").join("shared").join("conformance").join(sub);
    if d.is_dir() {
        Some(d)
    } else {
        println!(
            "SKIP: {} is absent; conformance checks against it were not run",
            d.display()
        );
        None
    }
}
