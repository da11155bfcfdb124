//! `--touch-file` and `--error-file`: how a sync tells other containers what
//! happened, through the filesystem.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// Touch `path` (create it, or update its mtime), creating parent dirs.
pub fn touch(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    // A new file's creation is the touch: setting its time as well would
    // make a reader see two changes.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => fs::OpenOptions::new()
            .append(true)
            .open(path)?
            .set_modified(SystemTime::now()),
        Err(e) => Err(e),
    }
}

/// Write the last error as `{"Msg": ..., "Err": ..., "Args": {...}}`,
/// atomically (temp file then rename), creating parent dirs.
pub fn write_error(
    path: &Path,
    msg: &str,
    err: &str,
    args: &[(&str, serde_json::Value)],
) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let args: serde_json::Map<String, serde_json::Value> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let doc = serde_json::json!({ "Msg": msg, "Err": err, "Args": args });
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    fs::write(&tmp, format!("{doc}\n"))?;
    fs::rename(&tmp, path)
}

/// Remove the error file after a success; missing is fine.
pub fn clear_error(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
