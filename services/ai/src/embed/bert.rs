//! A BERT-family encoder on candle's CPU backend: embeddings, post-norm transformer layers,
//! mean pooling over real tokens, L2 normalisation. The weights are a `model.safetensors` with
//! the usual BERT tensor names and a `config.json`, as in the model folders this project
//! provisions (all-MiniLM-L6-v2 as shipped, multilingual-e5-small converted from its 4-bit file).

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    pub config: BertConfig,
}

impl Bert {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let config: BertConfig = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
        let weights = dir.join("model.safetensors");
        // Read into memory rather than mapped: the workspace forbids `unsafe`, and these models
        // are small (90 MB for MiniLM, 470 MB for e5 in f32).
        let tensors = candle_core::safetensors::load(weights, &Device::Cpu)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        Self::new(config, vb)
    }

    fn new(config: BertConfig, vb: VarBuilder) -> anyhow::Result<Self> {
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                q: linear(h, h, a.pp("self.query"))?,
                k: linear(h, h, a.pp("self.key"))?,
                v: linear(h, h, a.pp("self.value"))?,
                attn_out: linear(h, h, a.pp("output.dense"))?,
                attn_norm: layer_norm(h, eps, a.pp("output.LayerNorm"))?,
                up: linear(h, config.intermediate_size, l.pp("intermediate.dense"))?,
                down: linear(config.intermediate_size, h, l.pp("output.dense"))?,
                out_norm: layer_norm(h, eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word: embedding(config.vocab_size, h, e.pp("word_embeddings"))?,
            position: embedding(
                config.max_position_embeddings,
                h,
                e.pp("position_embeddings"),
            )?,
            token_type: embedding(config.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            norm: layer_norm(h, eps, e.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads,
            config,
        })
    }

    /// Sentence embeddings (L2-normalised mean of the last hidden states over real tokens) of a
    /// batch of token id sequences, each at most `max_position_embeddings` long.
    pub fn embed(&self, batch: &[Vec<u32>]) -> anyhow::Result<Vec<Vec<f32>>> {
        let dev = Device::Cpu;
        let n = batch.len();
        let len = batch.iter().map(Vec::len).max().unwrap_or(0);
        if n == 0 || len == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for seq in batch {
            ids.extend(seq.iter().copied());
            ids.extend(std::iter::repeat_n(0u32, len - seq.len()));
            mask.extend(std::iter::repeat_n(1f32, seq.len()));
            mask.extend(std::iter::repeat_n(0f32, len - seq.len()));
        }
        let ids = Tensor::from_vec(ids, (n, len), &dev)?;
        let mask = Tensor::from_vec(mask, (n, len), &dev)?;
        let positions = Tensor::arange(0u32, len as u32, &dev)?
            .unsqueeze(0)?
            .repeat((n, 1))?;
        let types = Tensor::zeros((n, len), DType::U32, &dev)?;
        let x = self
            .word
            .forward(&ids)?
            .add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(&types)?)?;
        let mut x = self.norm.forward(&x)?;
        // Padding gets a large negative score before the softmax: (n, 1, 1, len).
        let bias = ((mask.clone() - 1.0)? * 1e9)?.unsqueeze(1)?.unsqueeze(1)?;
        let h = self.config.hidden_size;
        let hd = h / self.heads;
        let scale = 1.0 / (hd as f64).sqrt();
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((n, len, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        for l in &self.layers {
            let q = split(l.q.forward(&x)?)?;
            let k = split(l.k.forward(&x)?)?;
            let v = split(l.v.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((n, len, h))?;
            x = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + &x)?)?;
            let ff = l.down.forward(&l.up.forward(&x)?.gelu_erf()?)?;
            x = l.out_norm.forward(&(ff + &x)?)?;
        }
        let m = mask.unsqueeze(2)?;
        let summed = x.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        let out = mean.broadcast_div(&norm.clamp(1e-12, f64::MAX)?)?;
        Ok(out.to_vec2::<f32>()?)
    }
}
