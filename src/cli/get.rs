//! `wdsmc get`: download objects to files (or stdout), one session per object. This file plans
//! the jobs (output paths, refusals that need no network); `jobs` runs them and the library's
//! `download` module writes them.

use std::io::{self, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wdsmc::download::{Destination, DownloadError, DownloadOptions, Output, default_file_name};
use wdsmc::transport::{Request, Timeouts};

use super::args::{GetArgs, SourceArgs, TransferArgs};
use super::exit::{self, ExitCode, Failure};
use super::jobs::{self, Job, Plan};
use super::login;
use super::progress::Reporter;

pub fn run(args: GetArgs) -> Result<(), Failure> {
    let first = args.object.first().cloned().unwrap_or_default();
    let mut plan = plan(&args.source, &args.transfer, &first)?;
    // Outputs next: a target that cannot be written is refused before a password is asked.
    let jobs = plan_jobs(&args)?;
    log_in(&mut plan, &args.source)?;
    let labels: Vec<String> = jobs.iter().map(|j| j.label.clone()).collect();
    match jobs::run(jobs, plan, reporter(&args.transfer, &labels)) {
        ExitCode::Success => Ok(()),
        code => Err(Failure::reported(code)),
    }
}

/// The request every job starts from, checked as far as it can be without the network
/// (`object` stands for the jobs' objects).
pub(super) fn plan(
    source: &SourceArgs,
    transfer: &TransferArgs,
    object: &str,
) -> Result<Plan, Failure> {
    let mut timeouts = Timeouts::default();
    if let Some(limit) = source.start_timeout {
        timeouts.initiation = limit;
        timeouts.join = limit;
        timeouts.first_data = limit;
    }
    if let Some(limit) = transfer.timeout {
        timeouts.inactivity = limit;
    }
    let mut request = Request::new(source.server.clone(), source.namespace.clone(), object);
    request.cache_size = transfer.cache_size.max(1);
    request.interface = source.interface.clone();
    request.timeouts = timeouts;
    request.validate().map_err(|e| {
        Failure::msg(
            ExitCode::for_transport_error(&e),
            exit::transport_message(&e, false),
        )
    })?;
    Ok(Plan {
        request,
        trace: transfer.trace.clone(),
    })
}

/// Sets how the plan's sessions initiate (asking for a password if it must).
pub(super) fn log_in(plan: &mut Plan, source: &SourceArgs) -> Result<(), Failure> {
    plan.request.initiation = login::initiation(&source.auth, &mut |warning| {
        eprintln!("wdsmc: warning: {warning}")
    })?;
    Ok(())
}

pub(super) fn reporter(transfer: &TransferArgs, labels: &[String]) -> Arc<Reporter> {
    Arc::new(Reporter::new(
        transfer.progress,
        transfer.quiet,
        transfer.verbose,
        labels,
    ))
}

/// Decides every output and creates its partial file, refusing what cannot work, all before
/// any network activity.
fn plan_jobs(args: &GetArgs) -> Result<Vec<Job>, Failure> {
    let objects = &args.object;
    let options = DownloadOptions {
        replace_existing: args.force,
        keep_partial: args.keep_partial,
        sha256: args.transfer.sha256,
    };
    let job = |object: &String, destination| {
        let output = Output::create(destination, object, options.clone()).map_err(refusal)?;
        Ok(Job {
            label: object.clone(),
            object: object.clone(),
            output,
        })
    };
    if args.output.as_deref() == Some(Path::new("-")) {
        if objects.len() > 1 {
            return Err(Failure::msg(
                ExitCode::Usage,
                "-o - streams one object; give a folder with -o for several objects",
            ));
        }
        if io::stdout().is_terminal() {
            return Err(Failure::msg(
                ExitCode::Usage,
                "refusing to write binary data to a terminal; redirect stdout (-o - > FILE) or give -o FILE",
            ));
        }
        let stdout = BufWriter::with_capacity(1 << 20, io::stdout());
        return Ok(vec![job(
            &objects[0],
            Destination::Stream(Box::new(stdout)),
        )?]);
    }
    if objects.len() == 1 {
        let object = &objects[0];
        let destination = match &args.output {
            Some(path) if path.is_dir() => Destination::Folder(path.clone()),
            Some(path) => Destination::File(path.clone()),
            None => Destination::File(PathBuf::from(default_file_name(object).ok_or_else(
                || {
                    refusal(DownloadError::NoFileName {
                        object: object.clone(),
                    })
                },
            )?)),
        };
        return Ok(vec![job(object, destination)?]);
    }
    let folder = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut jobs: Vec<Job> = Vec::with_capacity(objects.len());
    for object in objects {
        let added = job(object, Destination::Folder(folder.clone()))?;
        if let Some(twin) = jobs
            .iter()
            .find(|j| j.output.target() == added.output.target())
        {
            return Err(Failure::msg(
                ExitCode::Usage,
                format!(
                    "objects {:?} and {object:?} would both be written to {}; download them separately with -o",
                    twin.object,
                    added.output.target().unwrap_or(Path::new("")).display()
                ),
            ));
        }
        jobs.push(added);
    }
    Ok(jobs)
}

pub(super) fn refusal(error: DownloadError) -> Failure {
    Failure::msg(
        ExitCode::for_download_error(&error),
        exit::download_message(&error, false),
    )
}
