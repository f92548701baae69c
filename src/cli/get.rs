//! `wdsmc get`: download objects to files (or stdout), one session per object. This file plans
//! the jobs (output paths, refusals that need no network); `jobs` runs them and the library's
//! `download` module writes them.

use std::io::{self, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wdsmc::download::{Destination, DownloadError, DownloadOptions, Output, default_file_name};
use wdsmc::transport::{Request, Timeouts};

use super::args::GetArgs;
use super::exit::{self, ExitCode, Failure};
use super::jobs::{self, Job, Plan};
use super::login;
use super::progress::Reporter;

pub fn run(args: GetArgs) -> Result<(), Failure> {
    let mut plan = plan(&args);
    let mut probe = plan.request.clone();
    probe.object = args.object.first().cloned().unwrap_or_default();
    probe.validate().map_err(|e| {
        Failure::msg(
            ExitCode::for_transport_error(&e),
            exit::transport_message(&e, false),
        )
    })?;
    // Outputs next: a target that cannot be written is refused before a password is asked.
    let jobs = plan_jobs(&args)?;
    plan.request.initiation = login::initiation(&args.source.auth, &mut |warning| {
        eprintln!("wdsmc: warning: {warning}")
    })?;
    let labels: Vec<String> = jobs.iter().map(|j| j.label.clone()).collect();
    let reporter = Arc::new(Reporter::new(
        args.progress,
        args.quiet,
        args.verbose,
        &labels,
    ));
    match jobs::run(jobs, plan, reporter) {
        ExitCode::Success => Ok(()),
        code => Err(Failure::reported(code)),
    }
}

/// The request every job starts from.
fn plan(args: &GetArgs) -> Plan {
    let mut timeouts = Timeouts::default();
    if let Some(limit) = args.source.start_timeout {
        timeouts.initiation = limit;
        timeouts.join = limit;
        timeouts.first_data = limit;
    }
    if let Some(limit) = args.timeout {
        timeouts.inactivity = limit;
    }
    let mut request = Request::new(
        args.source.server.clone(),
        args.source.namespace.clone(),
        String::new(),
    );
    request.cache_size = args.cache_size.max(1);
    request.interface = args.source.interface.clone();
    request.timeouts = timeouts;
    Plan {
        request,
        trace: args.trace.clone(),
    }
}

/// Decides every output and creates its partial file, refusing what cannot work, all before
/// any network activity.
fn plan_jobs(args: &GetArgs) -> Result<Vec<Job>, Failure> {
    let objects = &args.object;
    let options = DownloadOptions {
        replace_existing: args.force,
        keep_partial: args.keep_partial,
        sha256: args.sha256,
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

fn refusal(error: DownloadError) -> Failure {
    Failure::msg(
        ExitCode::for_download_error(&error),
        exit::download_message(&error, false),
    )
}
