//! `bookingctl`: the operators' tool for the booking system.
//!
//! It reads the same variables as the services (`KAFKA_BROKERS`,
//! `MONGODB_URI`, the topic names) and talks to the broker and databases
//! directly, so it works while a service is down — which is when it is
//! needed most. Every command prints text for a terminal or, with
//! `--output json`, one JSON document for scripts; progress and warnings go
//! to standard error. Exit codes: 0 done, 1 broker or database failed,
//! 2 usage or configuration error, 3 something named was not found,
//! 130 interrupted (nothing left half-done).

mod config;
mod dlq;
mod error;
mod outbox;
mod output;
mod rebuild;
mod tail;
mod topic_reader;

use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Connection,
    error::{CtlError, CtlResult},
    output::{print, Format},
};

/// Operate the booking system: dead letters, outboxes, read models, topics.
#[derive(Debug, Parser)]
#[command(name = "bookingctl", version, about, long_about = None)]
struct Cli {
    /// `text` for a terminal, `json` for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dead letters: messages a consumer could never apply.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The transactional outboxes of the services.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Rebuild traveler-service's read models from their topics.
    #[command(subcommand)]
    Rebuild(RebuildCommand),
    /// Read topics.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Lists the dead letters of a topic with why each failed.
    List {
        /// The topic whose dead letters to list (or its `.dlq` itself).
        #[arg(long)]
        topic: String,
        /// Show at most this many, oldest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Sends dead letters back to their topic, once each.
    #[command(group(ArgGroup::new("which").required(true).args(["event_id", "all"])))]
    Replay {
        /// The topic whose dead letters to replay (or its `.dlq` itself).
        #[arg(long)]
        topic: String,
        /// Replay the letters of this event (repeatable).
        #[arg(long = "event-id", num_args = 1..)]
        event_id: Vec<String>,
        /// Replay every letter not replayed yet.
        #[arg(long)]
        all: bool,
        /// Show what would be replayed; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Pending events, the oldest one's age, and the relay lease.
    Status {
        #[arg(long, value_enum)]
        service: outbox::ServiceName,
    },
}

#[derive(Debug, Subcommand)]
enum RebuildCommand {
    /// The catalog, from the property listings topic (compacted).
    Catalog,
    /// The bookings' status mirror, from the booking updates topic.
    Bookings,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Prints a topic's events, decoded, one per line; follows new ones.
    Tail {
        #[arg(long)]
        topic: String,
        /// Start at the oldest event instead of now.
        #[arg(long)]
        from_beginning: bool,
        /// Only events with this key (a booking or property id).
        #[arg(long)]
        key: Option<String>,
        /// Stop at the end the topic had when the command started.
        #[arg(long)]
        no_follow: bool,
    },
}

/// Cancelled on Ctrl-C or SIGTERM: long commands stop at a safe point.
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("bookingctl: stopping at the next safe point");
        token.cancel();
    });
    stop
}

async fn run(cli: Cli, stop: CancellationToken) -> CtlResult<()> {
    let conn = &cli.connection;
    let format = cli.output;
    match cli.command {
        Command::Dlq(DlqCommand::List { topic, limit }) => {
            print(&dlq::list(conn, &topic, limit).await?, format);
        }
        Command::Dlq(DlqCommand::Replay {
            topic,
            event_id,
            all,
            dry_run,
        }) => {
            let selection = if all {
                dlq::Selection::All
            } else {
                dlq::Selection::EventIds(event_id)
            };
            let report = dlq::replay(conn, &topic, selection, dry_run, &stop).await?;
            print(&report, format);
            if !report.not_found.is_empty() {
                return Err(CtlError::NotFound(format!(
                    "no dead letter for event id(s) {}",
                    report.not_found.join(", ")
                )));
            }
        }
        Command::Outbox(OutboxCommand::Status { service }) => {
            print(&outbox::status(conn, service).await?, format);
        }
        Command::Rebuild(RebuildCommand::Catalog) => {
            print(&rebuild::catalog(conn, &stop).await?, format);
        }
        Command::Rebuild(RebuildCommand::Bookings) => {
            print(&rebuild::bookings(conn, &stop).await?, format);
        }
        Command::Events(EventsCommand::Tail {
            topic,
            from_beginning,
            key,
            no_follow,
        }) => {
            tail::tail(
                conn,
                &topic,
                from_beginning,
                key.as_deref(),
                no_follow,
                format,
                &stop,
            )
            .await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stop = stop_on_signal();
    match run(cli, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bookingctl: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn replay_needs_event_ids_or_all() {
        let e = Cli::try_parse_from(["bookingctl", "dlq", "replay", "--topic", "t"]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        let cli = Cli::try_parse_from([
            "bookingctl",
            "dlq",
            "replay",
            "--topic",
            "t",
            "--event-id",
            "a",
            "b",
        ])
        .unwrap();
        let Command::Dlq(DlqCommand::Replay { event_id, all, .. }) = cli.command else {
            panic!("parsed {cli:?}");
        };
        assert_eq!(
            (event_id, all),
            (vec!["a".to_string(), "b".to_string()], false)
        );
    }

    #[test]
    fn the_mongodb_uri_never_appears_in_help() {
        // clap shows environment values in --help unless told not to.
        std::env::set_var("MONGODB_URI", "mongodb://admin:s3cret@db:27017");
        let help = Cli::command().render_long_help().to_string();
        std::env::remove_var("MONGODB_URI");
        assert!(!help.contains("s3cret"), "{help}");
    }
}
