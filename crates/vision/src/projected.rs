//! Test support, never used by the server: writes an ONNX embedder that is another one
//! followed by a fixed linear map to more values (a `MatMul` by a matrix with orthonormal
//! columns), so that tests can run a model of, say, 512 values without downloading one.
//! Orthonormal columns keep every cosine, so the wider model matches faces exactly as well
//! as the one it wraps; its embeddings are nonetheless different vectors of another length.

use std::path::Path;

use prost::Message;
use sha2::{Digest, Sha256};
use tract_onnx::pb::{tensor_proto, ModelProto, NodeProto, TensorProto};

/// Writes `source` (an embedder of `from` values) followed by a `from` x `to` map with
/// orthonormal columns drawn from `seed` to `target`; returns the written file's sha256 (hex).
pub fn write_projected(
    source: &Path,
    target: &Path,
    from: usize,
    to: usize,
    seed: u64,
) -> Result<String, String> {
    if from == 0 || to < from {
        return Err(format!("cannot map {from} values onto {to} orthonormally"));
    }
    let bytes = std::fs::read(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut model = ModelProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let graph = model.graph.as_mut().ok_or("the model has no graph")?;
    let output = graph.output.first_mut().ok_or("the model has no output")?;
    let inner = std::mem::replace(&mut output.name, "visage_projected".to_owned());
    // Let the runtime infer the new output's shape.
    output.r#type = None;
    let matrix = "visage_projection";
    graph.initializer.push(TensorProto {
        name: matrix.to_owned(),
        dims: vec![from as i64, to as i64],
        data_type: tensor_proto::DataType::Float as i32,
        raw_data: orthonormal_columns(to, from, seed)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        ..TensorProto::default()
    });
    graph.node.push(NodeProto {
        op_type: "MatMul".to_owned(),
        name: "visage_projection".to_owned(),
        input: vec![inner, matrix.to_owned()],
        output: vec!["visage_projected".to_owned()],
        ..NodeProto::default()
    });
    let out = model.encode_to_vec();
    std::fs::write(target, &out).map_err(|e| format!("{}: {e}", target.display()))?;
    Ok(hex::encode(Sha256::digest(&out)))
}

/// A `from` x `to` matrix, row-major (what `x · M` needs), whose `from` rows are orthonormal
/// vectors of `to` values: Gram-Schmidt over pseudo-random rows.
fn orthonormal_columns(to: usize, from: usize, seed: u64) -> Vec<f32> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(from);
    while rows.len() < from {
        let mut v: Vec<f64> = (0..to).map(|_| next()).collect();
        for r in &rows {
            let d: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(r).for_each(|(a, b)| *a -= d * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 1e-6 {
            rows.push(v.iter().map(|a| a / n).collect());
        }
    }
    rows.into_iter().flatten().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_keeps_dot_products() {
        let m = orthonormal_columns(512, 128, 7);
        for i in [0, 5, 127] {
            for j in [0, 5, 127] {
                let d: f32 = (0..512).map(|k| m[i * 512 + k] * m[j * 512 + k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-5, "{i} {j}: {d}");
            }
        }
    }
}
