//! `audlink exchange ls` and `audlink exchange put`: the file exchange of `[exchange]` by hand.
//!
//! Both open the configured exchange (a local folder, or an S3 bucket with credentials from
//! the environment: a missing credential is exit 2 before anything is sent) and drive it on a
//! single-threaded tokio runtime of their own. An onboarding file is uploaded under the key
//! [`onboarding_key`] gives it, so putting the same export again replaces the one object.

use std::path::PathBuf;

use audlink_core::format::onboarding::OnboardingFileName;

use super::args::ExchangeCommand;
use super::{Context, Failure, print};
use crate::app::AppError;
use crate::app::answer::{ExchangeListing, ExchangeObject, ExchangePut, PutFile};
use crate::exchange::{Exchange, ExchangeError, Storage, onboarding_key};

impl From<ExchangeError> for Failure {
    fn from(error: ExchangeError) -> Failure {
        AppError::from(error).into()
    }
}

/// Runs one `audlink exchange` command.
pub(super) fn run(ctx: &mut Context<'_>, command: &ExchangeCommand) -> Result<(), Failure> {
    let config = ctx.config()?;
    let exchange = config.exchange.open(&ctx.cli.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::job(format!("async runtime: {e}")))?;
    match command {
        ExchangeCommand::Ls { prefix } => {
            let objects = runtime.block_on(exchange.list(prefix))?;
            let mut human = String::new();
            for o in &objects {
                human.push_str(&format!(
                    "{}\t{}\t{}\n",
                    o.key,
                    o.size,
                    o.etag.as_deref().unwrap_or("-")
                ));
            }
            let listing = ExchangeListing {
                location: exchange.location(),
                objects: objects
                    .iter()
                    .map(|o| ExchangeObject {
                        key: o.key.clone(),
                        size: o.size,
                        etag: o.etag.clone(),
                    })
                    .collect(),
            };
            print(ctx, &listing, &human)
        }
        ExchangeCommand::Put { files, key } => {
            let prefix = config.exchange.onboarding_prefix();
            let keys = keys_of(files, key.as_deref(), prefix)?;
            let mut rows = Vec::new();
            let mut human = String::new();
            for (file, key) in files.iter().zip(&keys) {
                let bytes = std::fs::read(file)
                    .map_err(|e| Failure::job(format!("{}: {e}", file.display())))?;
                let size = bytes.len();
                runtime.block_on(put(&exchange, key, bytes))?;
                human.push_str(&format!("{} -> {key} ({size} bytes)\n", file.display()));
                rows.push(PutFile {
                    file: file.display().to_string(),
                    key: key.clone(),
                    size: size as u64,
                });
            }
            let put = ExchangePut {
                location: exchange.location(),
                uploaded: rows,
            };
            print(ctx, &put, &human)
        }
    }
}

async fn put(exchange: &Exchange, key: &str, bytes: Vec<u8>) -> Result<(), ExchangeError> {
    exchange.put(key, bytes).await
}

/// The key of each file: `--key` for a single file, else the onboarding key of its name.
fn keys_of(files: &[PathBuf], key: Option<&str>, prefix: &str) -> Result<Vec<String>, Failure> {
    if let Some(key) = key {
        if files.len() != 1 {
            return Err(Failure::usage("--key names the key of one file only"));
        }
        crate::exchange::check_key(key)?;
        return Ok(vec![key.to_owned()]);
    }
    files
        .iter()
        .map(|file| {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let parsed = OnboardingFileName::parse(name).map_err(|_| {
                Failure::usage(format!(
                    "{} is not an onboarding file (ftp_dpm_<DPID>_<ts>.sync…); give --key",
                    file.display()
                ))
            })?;
            Ok(onboarding_key(prefix, &parsed)?)
        })
        .collect()
}
