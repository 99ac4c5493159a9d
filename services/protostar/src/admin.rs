//! `protostar admin ...`: one-off administration against the configured database.

use clap::Subcommand;
use kernel::config::ConfigSource;
use kernel::service::Platform;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create the first admin, or make an existing account an admin (bootstrapping an install).
    /// The password comes from --password-file; without one, a random password is printed once.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

pub async fn run(config: ConfigSource, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateAdmin {
            email,
            password_file,
        } => {
            let (password, generated) = match password_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("--password-file {}: {e}", path.display()))?;
                    // A file written by `echo` ends with a newline that is not part of it.
                    (text.trim_end_matches(['\n', '\r']).to_owned(), false)
                }
                None => (random_password(), true),
            };
            let platform = Platform::from_config(config, CancellationToken::new())?;
            let created = auth::bootstrap::create_admin(&platform, &email, &password).await?;
            let what = if created.existed {
                "is now an admin"
            } else {
                "created as admin"
            };
            println!("{}: {what} (id {})", created.email, created.id);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
    }
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..24)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}
