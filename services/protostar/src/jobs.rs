//! `protostar job NAME`: one periodic job, run once, then exit (the operator's CronJobs call
//! it). A job that leaves work undone exits non-zero so the CronJob shows it.

use kernel::config::ConfigSource;
use kernel::service::Platform;
use tokio_util::sync::CancellationToken;

/// Every job this binary can run, with what it does.
pub const JOBS: &[(&str, &str)] = &[(
    noti::DIGEST_JOB,
    "sends each chatbot owner in digest mode the questions that waited, once",
)];

pub async fn run(config: ConfigSource, name: &str) -> anyhow::Result<()> {
    let platform = Platform::from_config(config, CancellationToken::new())?;
    match name {
        noti::DIGEST_JOB => {
            let report = noti::digest_job(&platform).await?;
            println!("{report}");
            for failure in &report.failed {
                eprintln!("  {failure}");
            }
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} digests were not delivered; the next run tries again",
                report.failed.len()
            );
            Ok(())
        }
        other => {
            let known: Vec<&str> = JOBS.iter().map(|(n, _)| *n).collect();
            anyhow::bail!("unknown job `{other}`; known jobs: {}", known.join(", "))
        }
    }
}
