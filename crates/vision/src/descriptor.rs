//! Embedder descriptors: the TOML file beside an ONNX face embedder that says how to run it
//! (input size, colour order, scaling, alignment template), what it gives (its dimension),
//! how its cosines map to scores, and the id stored with every face it embeds. SFace's
//! descriptor is compiled in (`crates/vision/embedders/sface-2021dec.toml`).

use std::fs;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Value};

use crate::align::AlignTarget;
use crate::error::{Error, Result};
use crate::score::ScoreMap;

const SFACE: &str = include_str!("../embedders/sface-2021dec.toml");

/// Most values an embedding may have (the index and PostgreSQL are sized for it).
pub const MAX_EMBEDDING_DIM: usize = 1024;
/// Longest model id (it is stored with every face).
pub const MAX_MODEL_ID_LEN: usize = 64;
const INPUT_SIDES: std::ops::RangeInclusive<u32> = 32..=512;

/// The order of the three input planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourOrder {
    Rgb,
    Bgr,
}

/// One embedding model, as its descriptor declares it. Built only through [`parse`] or
/// [`EmbedderDescriptor::sface`], so every field has been checked.
///
/// [`parse`]: EmbedderDescriptor::parse
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedderDescriptor {
    /// Stored with every face the model embeds; faces of different ids are never compared.
    pub id: String,
    /// The ONNX file: absolute once read from a descriptor file; relative (to the models
    /// directory) only in the built-in one.
    pub file: PathBuf,
    pub sha256: String,
    pub input_size: u32,
    pub colour_order: ColourOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Where the five landmarks land in the model's input.
    pub template: [[f32; 2]; 5],
    pub dimension: usize,
    pub score_map: ScoreMap,
}

impl EmbedderDescriptor {
    /// The built-in default, SFace 2021dec (its `file` is relative to the models directory).
    pub fn sface() -> EmbedderDescriptor {
        Self::parse(SFACE, Path::new("built-in sface-2021dec.toml"))
            .expect("the built-in SFace descriptor is valid")
    }

    /// Reads a descriptor file; its `file` is resolved against the descriptor's directory.
    pub fn from_file(path: &Path) -> Result<EmbedderDescriptor> {
        let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut descriptor = Self::parse(&text, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir =
            std::path::absolute(dir.unwrap_or(Path::new("."))).map_err(|e| Error::io(path, e))?;
        descriptor.file = dir.join(&descriptor.file);
        Ok(descriptor)
    }

    /// Parses and checks descriptor text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<EmbedderDescriptor> {
        let bad = |message: String| Error::Descriptor {
            path: origin.to_path_buf(),
            message,
        };
        let doc: DocumentMut = text.parse().map_err(|e| bad(format!("not TOML: {e}")))?;
        let fields = Fields {
            doc: &doc,
            bad: &bad,
        };
        let descriptor = EmbedderDescriptor {
            id: fields.model_id()?,
            file: PathBuf::from(fields.string("file")?),
            sha256: fields.sha256()?,
            input_size: fields.input_size()?,
            colour_order: match fields.string("colour_order")? {
                "rgb" => ColourOrder::Rgb,
                "bgr" => ColourOrder::Bgr,
                other => {
                    return Err(bad(format!(
                        "colour_order is {other:?}; use \"rgb\" or \"bgr\""
                    )))
                }
            },
            mean: fields.triple("mean")?,
            std: fields.triple("std")?,
            template: fields.template()?,
            dimension: fields.dimension()?,
            score_map: fields.score_map()?,
        };
        if descriptor.std.contains(&0.0) {
            return Err(bad("std has a zero".into()));
        }
        Ok(descriptor)
    }

    /// Where faces are aligned for this model.
    pub(crate) fn align_target(&self) -> AlignTarget {
        AlignTarget {
            template: self.template,
            side: self.input_size,
        }
    }
}

/// Typed reads of the descriptor's fields, each failing with what is wrong.
struct Fields<'a, F: Fn(String) -> Error> {
    doc: &'a DocumentMut,
    bad: &'a F,
}

impl<F: Fn(String) -> Error> Fields<'_, F> {
    fn value(&self, key: &str) -> Result<&Value> {
        match self.doc.as_table().get(key) {
            Some(Item::Value(v)) => Ok(v),
            Some(_) => Err((self.bad)(format!("{key} is not a value"))),
            None => Err((self.bad)(format!("{key} is missing"))),
        }
    }

    fn string(&self, key: &str) -> Result<&str> {
        self.value(key)?
            .as_str()
            .ok_or_else(|| (self.bad)(format!("{key} is not a string")))
    }

    fn integer(&self, key: &str) -> Result<i64> {
        self.value(key)?
            .as_integer()
            .ok_or_else(|| (self.bad)(format!("{key} is not an integer")))
    }

    fn numbers(&self, key: &str, value: &Value) -> Result<Vec<f32>> {
        let array = value
            .as_array()
            .ok_or_else(|| (self.bad)(format!("{key} is not an array")))?;
        array
            .iter()
            .map(|v| {
                v.as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .filter(|x| x.is_finite())
                    .map(|x| x as f32)
                    .ok_or_else(|| (self.bad)(format!("{key} holds something not a number")))
            })
            .collect()
    }

    fn triple(&self, key: &str) -> Result<[f32; 3]> {
        let values = self.numbers(key, self.value(key)?)?;
        values
            .try_into()
            .map_err(|_| (self.bad)(format!("{key} needs three numbers")))
    }

    /// An array of `[a, b]` pairs.
    fn pairs(&self, key: &str) -> Result<Vec<[f32; 2]>> {
        let array = self
            .value(key)?
            .as_array()
            .ok_or_else(|| (self.bad)(format!("{key} is not an array")))?;
        array
            .iter()
            .map(|pair| {
                <[f32; 2]>::try_from(self.numbers(key, pair)?)
                    .map_err(|_| (self.bad)(format!("{key} holds something not a pair")))
            })
            .collect()
    }

    fn model_id(&self) -> Result<String> {
        let id = self.string("id")?;
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if id.is_empty() || id.len() > MAX_MODEL_ID_LEN || !id.chars().all(allowed) {
            return Err((self.bad)(format!(
                "id {id:?} must be 1-{MAX_MODEL_ID_LEN} of a-z, 0-9, '.', '_', '-'"
            )));
        }
        Ok(id.to_owned())
    }

    fn sha256(&self) -> Result<String> {
        let sha = self.string("sha256")?.to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err((self.bad)("sha256 is not 64 hex digits".into()));
        }
        Ok(sha)
    }

    fn input_size(&self) -> Result<u32> {
        u32::try_from(self.integer("input_size")?)
            .ok()
            .filter(|s| INPUT_SIDES.contains(s))
            .ok_or_else(|| {
                (self.bad)(format!(
                    "input_size must be {}-{} pixels",
                    INPUT_SIDES.start(),
                    INPUT_SIDES.end()
                ))
            })
    }

    fn dimension(&self) -> Result<usize> {
        usize::try_from(self.integer("dimension")?)
            .ok()
            .filter(|d| (1..=MAX_EMBEDDING_DIM).contains(d))
            .ok_or_else(|| (self.bad)(format!("dimension must be 1-{MAX_EMBEDDING_DIM}")))
    }

    fn template(&self) -> Result<[[f32; 2]; 5]> {
        self.pairs("template")?
            .try_into()
            .map_err(|_| (self.bad)("template needs five [x, y] points".into()))
    }

    fn score_map(&self) -> Result<ScoreMap> {
        let knots = self.pairs("calibration")?.into_iter().map(|[c, s]| (c, s));
        ScoreMap::new(knots.collect()).ok_or_else(|| {
            (self.bad)(
                "calibration knots must increase strictly in both values, from [-1, 0] to [1, 1]"
                    .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(replace: &str, by: &str) -> Result<EmbedderDescriptor> {
        assert!(SFACE.contains(replace), "{replace}");
        EmbedderDescriptor::parse(&SFACE.replacen(replace, by, 1), Path::new("test.toml"))
    }

    #[test]
    fn the_built_in_descriptor_is_sface() {
        let d = EmbedderDescriptor::sface();
        assert_eq!(d.id, "sface-2021dec");
        assert_eq!(d.dimension, 128);
        assert_eq!(d.input_size, 112);
        assert_eq!(d.colour_order, ColourOrder::Rgb);
        assert_eq!(d.score_map, ScoreMap::sface());
        let lock = crate::models::ModelLock::builtin();
        let locked = lock.model(crate::models::EMBEDDER_FILE).expect("locked");
        assert_eq!(d.sha256, locked.sha256);
        assert_eq!(d.file, Path::new(crate::models::EMBEDDER_FILE));
    }

    #[test]
    fn bad_fields_are_refused_with_what_is_wrong() {
        let cases = [
            (
                "id = \"sface-2021dec\"",
                "id = \"SFace 2021\"",
                "id \"SFace 2021\"",
            ),
            (
                "dimension = 128",
                "dimension = 2048",
                "dimension must be 1-1024",
            ),
            ("dimension = 128", "", "dimension is missing"),
            ("input_size = 112", "input_size = 8", "input_size must be"),
            (
                "colour_order = \"rgb\"",
                "colour_order = \"rgba\"",
                "colour_order",
            ),
            (
                "std = [1.0, 1.0, 1.0]",
                "std = [1.0, 0, 1.0]",
                "std has a zero",
            ),
            (
                "mean = [0.0, 0.0, 0.0]",
                "mean = [0.0, 0.0]",
                "mean needs three",
            ),
            ("sha256 = \"0ba9", "sha256 = \"zz", "sha256 is not 64 hex"),
            ("[0.20, 0.50],", "[0.20, 0.90],", "calibration knots"),
            ("    [70.7299, 92.2041],\n", "", "template needs five"),
            ("id = ", "id = [", "not TOML"),
        ];
        for (from, to, want) in cases {
            let err = with(from, to).expect_err(want).to_string();
            assert!(
                err.contains(want) && err.contains("test.toml"),
                "{want}: {err}"
            );
        }
    }

    #[test]
    fn a_descriptor_file_resolves_its_model_beside_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.toml");
        fs::write(&path, SFACE.replace("sface-2021dec\"", "other-1\"")).expect("write");
        let d = EmbedderDescriptor::from_file(&path).expect("parses");
        assert_eq!(d.id, "other-1");
        assert_eq!(d.file, dir.path().join(crate::models::EMBEDDER_FILE));
    }
}
